"""`python -m worker` against a real livekit-server: registers, takes a dispatch, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from tests.support.dispatch import agent_in_room
from tests.support.ecs_agent import EcsAgent
from tests.support.livekit import LiveKitServer as LiveKit
from tests.support.worker import AGENT_NAME, dispatch
from voice.metadata import DispatchMetadata

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
    emf_names = {k for r in worker.emf() for k in r if k[0].isupper() and k != "service"}
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


async def test_with_no_webhook_at_all_the_worker_refuses_a_dead_session_and_closes_its_room(
    livekit: LiveKit, start_worker: Any
) -> None:
    """No control plane listens here: the worker's own check of the table is all there is."""
    from datetime import UTC, datetime, timedelta

    from functions.domain.models import SessionEnd, SessionRecord, SessionStatus
    from functions.store.dynamo import FleetStore, SessionStore
    from infra.local.aws import LOCAL_CREDENTIAL, REGION, local_client, start_moto
    from infra.template import create_sessions_table

    moto, endpoint = start_moto(0)
    try:
        ddb = local_client("dynamodb", endpoint)
        create_sessions_table(ddb, "it-sessions")
        store = SessionStore(ddb, "it-sessions")
        now = datetime.now(UTC)

        def session(session_id: str) -> SessionRecord:
            return SessionRecord(
                session_id=session_id,
                user_id="it",
                room_name=f"voice-it-{session_id}",
                agent_type="smart_router",
                initial_greeting=False,
                status=SessionStatus.PENDING,
                created_at=now,
                expires_at=now + timedelta(hours=1),
                token_expires_at=now + timedelta(hours=2),
                join_by=now + timedelta(minutes=10),
                config_version="it",
                max_session_duration=3600,
            )

        worker = start_worker(
            "dev",
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID=LOCAL_CREDENTIAL,
            AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIAL,
            SESSIONS_TABLE="it-sessions",
        )
        await worker.wait_for_log("capacity reported")
        [beat] = FleetStore(ddb, "it-sessions").heartbeats(datetime.now(UTC))
        # The test config's max_jobs (4): a worker takes exactly that many calls.
        assert beat.free_slots == beat.total_slots == 4

        lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
        try:
            # A live session gets its agent: the check lets it through.
            live = session(str(uuid.uuid4()))
            store.create(live, max_live=10)
            _, live_room = await _dispatch_to(lk, live.session_id)
            assert await agent_in_room(lk, live_room), worker.logs()[-3000:]

            dead = session(str(uuid.uuid4()))
            store.create(dead, max_live=10)
            store.finish(dead, SessionEnd(status=SessionStatus.ENDED, at=now, reason="it"))
            dead_id, dead_room = await _dispatch_to(lk, dead.session_id)
            assert dead_id == dead.session_id
            await worker.wait_for_log("session is not live")
            # The job deletes the room right after it logs the refusal.
            deadline = time.monotonic() + 10
            while (await lk.room.list_rooms(api.ListRoomsRequest(names=[dead_room]))).rooms:
                assert time.monotonic() < deadline, "the dead session's room was not deleted"
                await asyncio.sleep(0.1)
            assert not await agent_in_room(lk, dead_room, timeout=1.0)
        finally:
            await lk.aclose()
    finally:
        moto.stop()


async def _dispatch_to(lk: api.LiveKitAPI, session_id: str) -> tuple[str, str]:
    room = f"voice-it-{session_id}"
    await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=120))
    metadata = DispatchMetadata(
        session_id=session_id, agent_type="smart_router", initial_greeting=False
    )
    await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(
            agent_name=AGENT_NAME, room=room, metadata=metadata.to_json()
        )
    )
    return session_id, room
