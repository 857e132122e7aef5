"""Shared fixtures: moto-backed AWS, the control plane wired to it, Mangum events, a LiveKit server."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.stack import find_livekit_server, free_port, livekit_yaml
from infra.template import create_sessions_table

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "config" / "voice_config.yaml"
TABLE = "voice-sessions-test"
REPORTS_BUCKET = "voice-reports-test"
LK_KEY = "devkey"
LK_SECRET = "secret"


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
    """Makes moto's DynamoDB calls one-at-a-time, as DynamoDB's own transactions behave.

    moto rolls a failed transaction back by restoring a deep copy of the whole table taken when
    the transaction began, which wipes writes other threads made meanwhile. Real DynamoDB
    serializes conflicting transactions instead. Each call still interleaves freely with the
    others, so a read-then-write limit check would still race; only conditional writes hold.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "get_item", "put_item", "update_item", "query"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def reset_control_plane() -> None:
    """Drops the per-process caches so the next request sees this test's environment."""
    from functions.settings import get_settings
    from functions.wiring import get_container
    from voice.config import reset_config_cache

    get_settings.cache_clear()
    get_container.cache_clear()
    reset_config_cache()


@dataclass
class ControlPlane:
    table: str
    keys: dict[str, str]  # user -> API key
    dynamodb: Any
    reports_bucket: str

    def headers(self, user: str = "alice") -> dict[str, str]:
        return {"x-api-key": self.keys[user], "content-type": "application/json"}


def unreachable_livekit_url() -> str:
    # A loopback port nobody listens on: connections are refused at once.
    return f"ws://127.0.0.1:{free_port()}"


@pytest.fixture
def control_plane(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlPlane]:
    """The API wired to moto, with users alice and bob, and LiveKit unreachable unless overridden."""
    client = boto3.client("dynamodb")
    create_sessions_table(client, TABLE)
    boto3.client("s3").create_bucket(Bucket=REPORTS_BUCKET)
    monkeypatch.setenv("REPORTS_BUCKET", REPORTS_BUCKET)
    monkeypatch.setenv("SESSIONS_TABLE", TABLE)
    monkeypatch.setenv("VOICE_CONFIG_URI", str(CONFIG_FILE))
    monkeypatch.setenv("LIVEKIT_URL", unreachable_livekit_url())
    monkeypatch.setenv("LIVEKIT_API_KEY", LK_KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", LK_SECRET)
    monkeypatch.setenv("LIVEKIT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("ENVIRONMENT", "local")
    reset_control_plane()
    from functions.wiring import get_container

    keys = {}
    for user in ("alice", "bob"):
        key, _ = get_container().keys.create(user)
        keys[user] = key
    yield ControlPlane(table=TABLE, keys=keys, dynamodb=client, reports_bucket=REPORTS_BUCKET)
    reset_control_plane()


# -- API Gateway HTTP API (v2) events through the real Mangum handler ---------------------------


@dataclass
class LambdaContext:
    function_name: str = "voice-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:voice-api"
    aws_request_id: str = "req-1"


def http_api_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    query: str = "",
) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    is_binary = isinstance(body, bytes)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": f"req-{uuid.uuid4()}",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795910400000,
        },
        "body": (base64.b64encode(body).decode() if is_binary else body),
        "isBase64Encoded": is_binary,
    }


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def invoke(method: str, path: str, **kwargs: Any) -> Reply:
    from functions.api.handler import handler

    if "json" in kwargs:
        kwargs["body"] = json.dumps(kwargs.pop("json"))
    resp = handler(http_api_event(method, path, **kwargs), LambdaContext())
    raw = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        parsed = raw
    return Reply(resp["statusCode"], parsed, resp.get("headers", {}))


# -- a real LiveKit server ------------------------------------------------------------------


@dataclass
class LiveKitServer:
    url: str
    http_url: str
    api_key: str
    api_secret: str
    process: subprocess.Popen


def start_livekit_server(tmp: Path, webhook_url: str | None = None) -> LiveKitServer:
    binary = find_livekit_server()
    if binary is None:
        pytest.skip("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    port, tcp, udp = free_port(), free_port(), free_port()
    cfg = tmp / "livekit.yaml"
    cfg.write_text(livekit_yaml(port, tcp, udp, webhook_url=webhook_url, log_level="warn"))
    log = (tmp / "livekit.log").open("w")
    proc = subprocess.Popen(
        [binary, "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"livekit-server exited: {(tmp / 'livekit.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("livekit-server did not start within 20 s")
    return LiveKitServer(
        f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", LK_KEY, LK_SECRET, proc
    )


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
def fake_openai() -> Iterator[Any]:
    """The deterministic OpenAI-compatible STT / LLM / TTS server, for a whole test module."""
    from tests.support.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(free_port()) as server:
        yield server


class ServerThread(threading.Thread):
    """Runs an ASGI app under uvicorn in this process (so moto's in-process mock serves it)."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        super().__init__(daemon=True)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.url = f"http://127.0.0.1:{port}"

    def run(self) -> None:
        self.server.run()

    def __enter__(self) -> ServerThread:
        self.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.join(timeout=10)
