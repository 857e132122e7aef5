"""A job process killed mid-call (as the memory guard or a native crash kills it) while its worker
lives: the worker removes the dead agent from the room at once, instead of LiveKit waiting ~20 s
for its peer connection to time out, so the control plane can send another."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest
from livekit import api

from tests.support.dispatch import agent_in_room
from tests.support.livekit import LiveKitServer
from tests.support.worker import Worker, dispatch

pytestmark = pytest.mark.livekit

# Issue 18: a caller hears a new agent within 5 s of the loss; the dead one must be gone well
# before that for the control plane's re-dispatch (LiveKit's participant_left webhook) to fit.
DEAD_AGENT_GONE_BOUND_S = 2.0


def _logged_job_pid(worker: Worker, room: str) -> int | None:
    for line in worker.logs().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        pid = record.get("pid")
        if record.get("room") == room and pid and pid != worker.proc.pid:
            return int(pid)
    return None


async def job_pid(worker: Worker, room: str, timeout: float = 10.0) -> int:
    """The pid of the job process serving `room`, from its own (JSON) log lines, which may reach
    the log a moment after its agent is in the room."""
    deadline = time.monotonic() + timeout
    while (pid := _logged_job_pid(worker, room)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no job process logged for {room}:\n{worker.logs()[-3000:]}")
        await asyncio.sleep(0.1)
    return pid


async def agents(lk: api.LiveKitAPI, room: str) -> list[str]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return [p.identity for p in resp.participants if p.kind == api.ParticipantInfo.Kind.AGENT]


async def test_a_killed_job_process_has_its_agent_removed_from_the_room_at_once(
    livekit: LiveKitServer, start_worker: Any
) -> None:
    worker = start_worker("start")
    await worker.wait_for_log("registered worker")
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        _, room = await dispatch(lk)
        assert await agent_in_room(lk, room), worker.logs()[-3000:]
        [dead] = await agents(lk, room)
        os.kill(await job_pid(worker, room), signal.SIGKILL)
        killed = time.monotonic()
        while dead in await agents(lk, room):
            assert time.monotonic() - killed < 30, "the dead agent was never removed"
            await asyncio.sleep(0.1)
        gone = time.monotonic() - killed
    assert gone <= DEAD_AGENT_GONE_BOUND_S, f"the dead agent stayed {gone:.1f} s"
    assert worker.proc.poll() is None, "the worker itself must live on"
    await worker.wait_for_log("its agent was removed from the room")
