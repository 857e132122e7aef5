"""The whole local stack on free ports, its worker talking to the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from infra.local.aws import local_client
from infra.local.livekit import find_livekit_server
from infra.local.stack import LocalStack, StackOptions
from tests.support.config_files import config_with
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.tools import missing_tool
from voice.report import report_key

API = "/voice/realtime"


def fake_models_options(run_dir: Path, fake: FakeOpenAIServer, **overrides: object) -> StackOptions:
    """`overrides` replace StackOptions fields (e.g. `redis_address` for SIP)."""
    return StackOptions.on_free_ports(
        run_dir,
        worker_env={"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-fake"},
        # The webhooks must do the work on their own here: no reaper to paper over a lost event.
        reaper_interval=0,
        **overrides,  # type: ignore[arg-type]
    )


@contextmanager
def stack_with_fake_models(
    run_dir: Path, fake: FakeOpenAIServer, **overrides: object
) -> Iterator[LocalStack]:
    """`overrides` replace StackOptions fields (e.g. `redis_address` for SIP)."""
    if find_livekit_server() is None:
        missing_tool("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    with LocalStack(fake_models_options(run_dir, fake, **overrides)) as running:
        yield running


@contextmanager
def stack_with_webhooks(
    run_dir: Path, fake: FakeOpenAIServer, hook_url: str, secret: str, **realtime: Any
) -> Iterator[LocalStack]:
    """The stack with customer webhooks to `hook_url` signed with `secret`, retried after 1 s;
    `realtime` sections merge over the config's."""
    config = config_with(run_dir / "voice.yaml", {"webhooks": {"url": hook_url}, **realtime})
    with stack_with_fake_models(
        run_dir,
        fake,
        config_uri=str(config),
        extra_env={"VOICE_WEBHOOK_SECRET": secret, "WEBHOOK_RETRY_BASE_SECONDS": "1"},
    ) as running:
        yield running


def session_report(stack: LocalStack, session_id: str) -> dict[str, Any] | None:
    """The worker's report for a session, wherever the stack told the worker to write it."""
    env = stack.worker_env()
    bucket = env.get("REPORTS_BUCKET")
    if bucket:
        s3 = local_client("s3", stack.moto_url)
        try:
            body = s3.get_object(Bucket=bucket, Key=report_key(session_id))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))
    path = Path(env["REPORTS_DIR"]) / Path(report_key(session_id)).name
    return dict(json.loads(path.read_text())) if path.exists() else None


def log_tail(stack: LocalStack, *names: str, chars: int = 4000) -> str:
    parts = []
    for name in names:
        path = stack.log_path(name)
        text = path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"
        parts.append(f"--- {name} ---\n{text}")
    return "\n".join(parts)


async def poll_session(
    api: httpx.AsyncClient,
    session_id: str,
    until: Callable[[dict[str, Any]], Any],
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """GETs the session until `until(body)` holds; fails with the last body after `timeout`."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await api.get(f"/session/{session_id}")
        resp.raise_for_status()
        body = resp.json()
        if until(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {body}")
