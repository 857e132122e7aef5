"""`python -m worker` as a subprocess against a test LiveKit server, and the dispatches it serves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from livekit import api

from infra.local.paths import ROOT
from infra.local.stack import free_port
from tests.support.dispatch import dispatch_call
from tests.support.livekit import LiveKitServer

AGENT_NAME = "it-voice-agent"


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], out: Path, err: Path, port: int) -> None:
        self.proc, self.out, self.err, self.port = proc, out, err, port

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    async def wait_for_log(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            assert self.proc.poll() is None, f"worker exited:\n{self.logs()[-3000:]}"
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {text!r} in worker logs:\n{self.logs()[-3000:]}")

    async def wait_for_warm_pool(self, processes: int, timeout: float = 120.0) -> None:
        """Waits until `processes` job processes have finished prewarm (a slow machine is slow)."""
        deadline = time.monotonic() + timeout
        while self.logs().count('"process initialized"') < processes:
            assert self.proc.poll() is None, f"worker exited:\n{self.logs()[-3000:]}"
            if time.monotonic() > deadline:
                raise AssertionError(f"pool not warm after {timeout}s:\n{self.logs()[-3000:]}")
            await asyncio.sleep(0.2)

    async def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                return code
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker still running after {timeout}s:\n{self.logs()[-3000:]}")

    async def info(self) -> dict[str, Any]:
        """The worker's /worker JSON (agent name, load, active jobs), after a healthy /."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.port}/") as health:
                assert (health.status, await health.text()) == (200, "OK")
            async with http.get(f"http://127.0.0.1:{self.port}/worker") as info:
                return dict(await info.json())

    async def active_jobs(self) -> int:
        return int((await self.info()).get("active_jobs", 0))

    def rooms_joined(self) -> set[str]:
        """Rooms this worker's jobs joined, from its JSON logs."""
        rooms = set()
        for line in self.logs().splitlines():
            if "joined room" in line and line.startswith("{"):
                record = json.loads(line)
                room = record.get("room") or record.get("extra", {}).get("room")
                if room:
                    rooms.add(room)
        return rooms

    async def wait_for_room(self, room: str, timeout: float = 30.0) -> bool:
        """True once this worker's job logged joining `room` (the log trails the join a little)."""
        deadline = time.monotonic() + timeout
        while room not in self.rooms_joined():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    def emf(self) -> list[dict[str, Any]]:
        records = []
        for line in self.out.read_text().splitlines():
            if line.startswith('{"_aws"'):
                records.append(json.loads(line))
        return records

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_worker_process(
    livekit: LiveKitServer, run_dir: Path, mode: str, *, worker_yaml: str = "", **extra_env: str
) -> Worker:
    """A worker named `AGENT_NAME`; `worker_yaml` adds keys to `voice.realtime.worker`."""
    name = f"{mode}-{uuid.uuid4().hex[:6]}"
    port = free_port()
    config = run_dir / f"{name}.yaml"
    worker_keys = f"agent_name: {AGENT_NAME}, drain_timeout: 60"
    if worker_yaml:
        worker_keys += f", {worker_yaml}"
    config.write_text(
        "voice:\n  realtime:\n    audio: {enable_thinking_sound: true}\n"
        f"    worker: {{{worker_keys}}}\n"
    )
    env = {
        **os.environ,
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "VOICE_CONFIG_URI": str(config),
        "OPENAGENTS_LIVEKIT_WORKER_PORT": str(port),
        "REPORTS_DIR": str(run_dir / "reports"),
        "OPENAI_API_KEY": "sk-test",
        # Nothing is said in these calls; a provider call would fail fast, not reach out.
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0",
        **extra_env,
    }
    env.pop("REPORTS_BUCKET", None)
    out, err = run_dir / f"{name}.out", run_dir / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", mode],
            cwd=ROOT,
            env=env,
            stdout=o,
            stderr=e,
            start_new_session=True,
        )
    return Worker(proc, out, err, port)


async def dispatch(lk: api.LiveKitAPI, *, greeting: bool = False) -> tuple[str, str]:
    """A room and an explicit dispatch of `AGENT_NAME` to it, as the caller's join does."""
    return await dispatch_call(lk, greeting=greeting, agent=AGENT_NAME)


async def wait_for_jobs(worker: Worker, count: int, timeout: float) -> int:
    """Polls /worker until it reports `count` active jobs; returns the last count seen."""
    deadline = time.monotonic() + timeout
    jobs = await worker.active_jobs()
    while jobs != count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        jobs = await worker.active_jobs()
    return jobs
