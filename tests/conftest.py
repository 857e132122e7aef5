"""Shared fixtures: moto-backed AWS, the control plane wired to it, a LiveKit server, stand-ins."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.moto_fidelity import serialize_dynamodb
from infra.local.paths import CONFIG_FILE
from infra.local.stack import free_port
from infra.template import create_sessions_table
from tests.support.control_plane import (
    REPORTS_BUCKET,
    TABLE,
    ControlPlane,
    reset_control_plane,
    unreachable_livekit_url,
)
from tests.support.ecs_agent import EcsAgent, serve_ecs_agent
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.fleet import report_capacity
from tests.support.livekit import LiveKitServer, start_livekit_server, stop_process

# The fleet the control_plane fixture reports: more slots than any test takes.
FLEET_SLOTS = 1000


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for var in list(os.environ):
        if var.startswith("OPENAGENTS_LIVEKIT_"):
            monkeypatch.delenv(var)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def serialized_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes moto's DynamoDB calls one-at-a-time, as DynamoDB's own transactions behave."""
    serialize_dynamodb(monkeypatch.setattr)


@pytest.fixture
def control_plane(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlPlane]:
    """The API wired to moto, with users alice and bob, and LiveKit unreachable unless overridden.

    Admission by fleet capacity is on, as deployed: a worker with ample free slots has reported
    in (a heartbeat written by the worker's own writer). Admission tests take it away or fill it.
    """
    client = boto3.client("dynamodb")
    create_sessions_table(client, TABLE)
    boto3.client("s3").create_bucket(Bucket=REPORTS_BUCKET)
    monkeypatch.setenv("REPORTS_BUCKET", REPORTS_BUCKET)
    monkeypatch.setenv("SESSIONS_TABLE", TABLE)
    monkeypatch.setenv("VOICE_CONFIG_URI", str(CONFIG_FILE))
    monkeypatch.setenv("LIVEKIT_URL", unreachable_livekit_url())
    monkeypatch.setenv("LIVEKIT_API_KEY", DEV_LIVEKIT_KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", DEV_LIVEKIT_SECRET)
    monkeypatch.setenv("LIVEKIT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("ENVIRONMENT", "local")
    reset_control_plane()
    from functions.wiring import get_container

    keys = {}
    for user in ("alice", "bob"):
        key, _ = get_container().keys.create(user)
        keys[user] = key
    report_capacity(client, TABLE, free=FLEET_SLOTS)
    yield ControlPlane(table=TABLE, keys=keys, dynamodb=client, reports_bucket=REPORTS_BUCKET)
    reset_control_plane()


@pytest.fixture
def livekit_server(tmp_path: Path) -> Iterator[LiveKitServer]:
    server = start_livekit_server(tmp_path)
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    """One LiveKit server for a whole test module."""
    server = start_livekit_server(tmp_path_factory.mktemp("livekit"))
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """The deterministic OpenAI-compatible STT / LLM / TTS server, for a whole test module."""
    with FakeOpenAIServer(free_port()) as server:
        yield server


@pytest.fixture
async def ecs_agent() -> AsyncIterator[tuple[EcsAgent, str]]:
    """A stand-in for the ECS agent: the stand-in and the URI for $ECS_AGENT_URI."""
    async with serve_ecs_agent() as served:
        yield served
