"""One local stack per chaos module: recognisable secrets, an ECS agent stand-in, the reaper on."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.aws import CONFIG_KEY, LOCAL_CONFIG_BUCKET
from infra.local.livekit import find_livekit_server
from infra.local.paths import ROOT
from infra.local.stack import LocalStack, StackOptions
from tests.support.ecs_agent import EcsAgent, serve_ecs_agent
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.stack import API
from tests.support.tools import missing_tool
from tests.support.webhook_relay import WebhookRelay

# `make chaos` records the figures in bench/results/chaos.json (CHAOS_RESULTS); any other run,
# `make test` included, writes them under build/ so the work tree stays clean.
RESULTS = Path(os.environ.get("CHAOS_RESULTS") or ROOT / "build" / "chaos.json")
# Short enough that "within one reaper pass" is seconds, long enough not to starve 2 cores.
REAPER_INTERVAL = 8.0
CONFIG_URI = f"s3://{LOCAL_CONFIG_BUCKET}/{CONFIG_KEY}"


@dataclass(frozen=True)
class Secrets:
    """Values no log may contain: recognisable, so a hit is never a coincidence."""

    openai_key: str = field(default_factory=lambda: "sk-chaos-" + secrets.token_hex(16))
    livekit_key: str = field(default_factory=lambda: "APIchaos" + secrets.token_hex(6))
    livekit_secret: str = field(default_factory=lambda: "lk-chaos-" + secrets.token_hex(20))


# Runs of each timed scenario: one in `make test`, five under `make chaos` for the figures.
RUNS = int(os.environ.get("CHAOS_RUNS") or 1)
# Per run, one list each (see the format): from the fault to the caller hearing an agent
# again, until every session is consistent, and the AWS stall's slowest API answer.
PER_RUN = ("caller_back_s", "consistent_s", "slowest_response_s")


@dataclass
class Figures:
    """What each scenario measured; written to RESULTS when the module ends."""

    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def record(self, scenario: str, **figures: Any) -> None:
        rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
        entry = self.scenarios.setdefault(scenario, {})
        for key, value in rounded.items():
            if key in PER_RUN:
                entry.setdefault(key, []).append(value)
            else:
                entry[key] = value
        print(f"\n[chaos] {scenario}: {rounded}")

    def write(self, path: Path = RESULTS) -> None:
        existing = json.loads(path.read_text()) if path.exists() else {}
        merged = existing.get("scenarios", {}) | self.scenarios
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}",
                    "load_average_1_5_15": {
                        "before": [round(x, 2) for x in self.load_before],
                        "after": [round(x, 2) for x in os.getloadavg()],
                    },
                    "runs_per_scenario": RUNS,
                    "reaper_interval_seconds": REAPER_INTERVAL,
                    "scenarios": merged,
                },
                indent=2,
            )
            + "\n"
        )


@dataclass
class Chaos:
    stack: LocalStack
    secrets: Secrets
    ecs: EcsAgent
    figures: Figures
    relay: WebhookRelay
    join_tokens: list[str] = field(default_factory=list)

    @property
    def api_key(self) -> str:
        return self.stack.api_keys[0][0]

    def client(self, timeout: float = 30) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.api_url + API, headers={"x-api-key": self.api_key}, timeout=timeout
        )

    async def create(self, api: httpx.AsyncClient) -> dict[str, Any]:
        resp = await api.post("/session", json={"agent_type": "single_agent"})
        assert resp.status_code == 201, resp.text
        created = resp.json()
        self.join_tokens.append(created["token"])
        return dict(created)

    def audit(self) -> dict[str, Any]:
        """`python -m functions.audit --json` against the stack's emulator and LiveKit."""
        out = subprocess.run(
            [sys.executable, "-m", "functions.audit", "--json"],
            cwd=ROOT,
            env=self.stack.base_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        report: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip() else {}
        report["exit_code"] = out.returncode
        report["stderr"] = out.stderr[-2000:]
        return report

    async def until_audit_clean(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        report = self.audit()
        while report["exit_code"] != 0 and time.monotonic() < deadline:
            await asyncio.sleep(1)
            report = await asyncio.to_thread(self.audit)
        assert report["exit_code"] == 0, report
        return report


class EcsAgentThread:
    """The ECS agent stand-in on its own event loop, alive for a whole module."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.agent: EcsAgent | None = None
        self.uri = ""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_ecs_agent() as (agent, uri):
            self.agent, self.uri = agent, uri
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EcsAgentThread:
        self._thread.start()
        assert self._ready.wait(10), "the ECS agent stand-in did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def chaos(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chaos]:
    if find_livekit_server() is None:
        missing_tool("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    keys = Secrets()
    figures = Figures()
    with EcsAgentThread() as ecs:
        assert ecs.agent is not None
        options = StackOptions.on_free_ports(
            tmp_path_factory.mktemp("chaos"),
            config_uri=CONFIG_URI,
            reaper_interval=REAPER_INTERVAL,
            start_worker=False,
            livekit_api_key=keys.livekit_key,
            livekit_api_secret=keys.livekit_secret,
            worker_env={
                "OPENAI_BASE_URL": fake_openai.base_url,
                "OPENAI_API_KEY": keys.openai_key,
                "ECS_AGENT_URI": ecs.uri,
            },
        )
        api_webhook = f"http://127.0.0.1:{options.api_port}{API}/livekit/webhook"
        with WebhookRelay(api_webhook) as relay:
            options.livekit_webhook_url = relay.url
            with LocalStack(options) as stack:
                # Production mode: SIGTERM drains live calls (dev mode closes at once).
                stack.start_worker(command="start")
                yield Chaos(stack=stack, secrets=keys, ecs=ecs.agent, figures=figures, relay=relay)
    figures.write()


@pytest.fixture
async def api(chaos: Chaos) -> AsyncIterator[httpx.AsyncClient]:
    async with chaos.client() as client:
        yield client
