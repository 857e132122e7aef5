"""The whole local stack on free ports, with the fake OpenAI server, shared by a module's tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infra.local.stack import LocalStack
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.stack import stack_with_fake_models
from voice.report import report_key

API = "/voice/realtime"


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    with stack_with_fake_models(tmp_path_factory.mktemp("stack"), fake_openai) as running:
        yield running


@pytest.fixture
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(base_url=stack.api_url + API, headers=headers, timeout=10) as c:
        yield c


def session_report(stack: LocalStack, session_id: str) -> dict[str, Any] | None:
    """The worker's report for a session, wherever the stack told the worker to write it."""
    env = stack.worker_env()
    bucket = env.get("REPORTS_BUCKET")
    if bucket:
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.moto_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
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
    api: httpx.AsyncClient, session_id: str, until: Any, timeout: float, what: str
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
