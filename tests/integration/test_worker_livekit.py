"""`python -m worker` against a real livekit-server: registers, takes a dispatch, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from tests.support.dispatch import agent_in_room
from tests.support.ecs_agent import EcsAgent
from tests.support.livekit import LiveKitServer as LiveKit
from tests.support.worker import AGENT_NAME, dispatch

pytestmark = pytest.mark.livekit


async def test_start_takes_a_dispatch_holds_protection_and_drains_on_sigterm(
    livekit: LiveKit,
    start_worker: Any,
    ecs_agent: tuple[EcsAgent, str],
    tmp_path: Path,
) -> None:
    ecs, ecs_uri = ecs_agent
    worker = start_worker("start", ECS_AGENT_URI=ecs_uri)
    await worker.wait_for_log("registered worker")
    assert (await worker.info())["agent_name"] == AGENT_NAME

    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        session_id, room = await dispatch(lk)
        assert await agent_in_room(lk, room), worker.logs()[-3000:]
        assert (await worker.info()).get("active_jobs") == 1
        for _ in range(50):
            if ecs.bodies:
                break
            await asyncio.sleep(0.1)
        assert ecs.bodies[0]["ProtectionEnabled"] is True

        worker.proc.send_signal(signal.SIGTERM)
        await worker.wait_for_log("draining worker")
        await asyncio.sleep(2.0)
        # A live call keeps the worker (and the agent in the room) going through the drain.
        assert worker.proc.poll() is None
        assert await agent_in_room(lk, room, timeout=1.0)

        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        assert await worker.wait_exit(timeout=40) == 0
    finally:
        await lk.aclose()

    assert ecs.bodies[-1] == {"ProtectionEnabled": False}
    report = json.loads((tmp_path / "reports" / f"{session_id}.json").read_text())
    assert (report["session_id"], report["room"], report["agent_type"]) == (
        session_id,
        room,
        "smart_router",
    )
    assert report["job_id"].startswith("AJ_")
    emf_names = {k for r in worker.emf() for k in r if k[0].isupper() and k != "Service"}
    assert {"ActiveJobs", "JobsStarted"} <= emf_names


async def test_dev_mode_registers_and_takes_a_dispatched_job(
    livekit: LiveKit,
    start_worker: Any,
) -> None:
    worker = start_worker("dev")
    await worker.wait_for_log("registered worker")
    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        _, room = await dispatch(lk)
        assert await agent_in_room(lk, room), worker.logs()[-3000:]
    finally:
        await lk.aclose()
    worker.proc.send_signal(signal.SIGTERM)
    # dev mode does not drain: it closes the job and exits.
    assert await worker.wait_exit(timeout=30) == 0
