"""`python -m worker` against a real livekit-server: registers, takes a dispatch, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api

from infra.local.paths import ROOT as REPO
from infra.local.stack import free_port
from tests.support.ecs_agent import EcsAgent
from tests.support.livekit import LiveKitServer as LiveKit
from voice.metadata import DispatchMetadata

pytestmark = pytest.mark.livekit

AGENT_NAME = "it-voice-agent"


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], out: Path, err: Path, port: int) -> None:
        self.proc, self.out, self.err, self.port = proc, out, err, port

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    async def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            assert self.proc.poll() is None, f"worker exited:\n{self.logs()[-3000:]}"
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {text!r} in worker logs:\n{self.logs()[-3000:]}")

    async def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                return code
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker still running after {timeout}s:\n{self.logs()[-3000:]}")

    def emf(self) -> list[dict[str, Any]]:
        records = []
        for line in self.out.read_text().splitlines():
            if line.startswith('{"_aws"'):
                records.append(json.loads(line))
        return records


@pytest.fixture
def start_worker(livekit: LiveKit, tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(mode: str, **extra_env: str) -> Worker:
        port = free_port()
        config = tmp_path / "voice_config.yaml"
        config.write_text(
            "voice:\n  realtime:\n    audio: {enable_thinking_sound: true}\n"
            f"    worker: {{agent_name: {AGENT_NAME}, drain_timeout: 60}}\n"
        )
        env = {
            **os.environ,
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
            "VOICE_CONFIG_URI": str(config),
            "OPENAGENTS_LIVEKIT_WORKER_PORT": str(port),
            "REPORTS_DIR": str(tmp_path / "reports"),
            "OPENAI_API_KEY": "sk-test",
            # Nothing is said in these calls; a provider call would fail fast, not reach out.
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0",
            **extra_env,
        }
        env.pop("REPORTS_BUCKET", None)
        out, err = tmp_path / f"{mode}.out", tmp_path / f"{mode}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker", mode],
                cwd=REPO,
                env=env,
                stdout=o,
                stderr=e,
                start_new_session=True,
            )
        worker = Worker(proc, out, err, port)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()


async def _dispatch(lk: api.LiveKitAPI, *, greeting: bool = False) -> tuple[str, str]:
    session_id = str(uuid.uuid4())
    room = f"voice-it-{session_id}"
    await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=120))
    metadata = DispatchMetadata(
        session_id=session_id, agent_type="smart_router", initial_greeting=greeting
    )
    await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(
            agent_name=AGENT_NAME, room=room, metadata=metadata.to_json()
        )
    )
    return session_id, room


async def _agent_in_room(lk: api.LiveKitAPI, room: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        if any(p.kind == api.ParticipantInfo.Kind.AGENT for p in resp.participants):
            return True
        await asyncio.sleep(0.2)
    return False


async def _worker_info(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as health:
            assert (health.status, await health.text()) == (200, "OK")
        async with http.get(f"http://127.0.0.1:{port}/worker") as info:
            return dict(await info.json())


async def test_start_takes_a_dispatch_holds_protection_and_drains_on_sigterm(
    livekit: LiveKit,
    start_worker: Any,
    ecs_agent: tuple[EcsAgent, str],
    tmp_path: Path,
) -> None:
    ecs, ecs_uri = ecs_agent
    worker = start_worker("start", ECS_AGENT_URI=ecs_uri)
    await worker.wait_for_log("registered worker")
    assert (await _worker_info(worker.port))["agent_name"] == AGENT_NAME

    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        session_id, room = await _dispatch(lk)
        assert await _agent_in_room(lk, room), worker.logs()[-3000:]
        assert (await _worker_info(worker.port)).get("active_jobs") == 1
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
        assert await _agent_in_room(lk, room, timeout=1.0)

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
        _, room = await _dispatch(lk)
        assert await _agent_in_room(lk, room), worker.logs()[-3000:]
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
        assert beat.free_slots == beat.total_slots == 3

        lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
        try:
            # A live session gets its agent: the check lets it through.
            live = session(str(uuid.uuid4()))
            store.create(live, max_live=10)
            _, live_room = await _dispatch_to(lk, live.session_id)
            assert await _agent_in_room(lk, live_room), worker.logs()[-3000:]

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
            assert not await _agent_in_room(lk, dead_room, timeout=1.0)
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
