"""A stalled AWS (the table, and the S3 object the config is refreshed from) costs an API request
at most its AWS budget (3 s), answered as 503 JSON with Retry-After; the API serves again as soon
as AWS does. Real sockets: the moto server behind a proxy that stops forwarding, as a frozen
emulator or a hung network path does."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.paths import CONFIG_FILE
from infra.template import create_sessions_table
from tests.support.control_plane import TABLE, reset_control_plane, unreachable_livekit_url
from tests.support.fleet import report_capacity
from tests.support.lambda_events import invoke
from tests.support.stall import StallingProxy

BASE = "/voice/realtime"
# The bound the issue names for a request against a stalled table (p99 of the chaos scenario).
STALLED_RESPONSE_BOUND_S = 3.5


@pytest.fixture
def stalling_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StallingProxy, str]]:
    """The API wired to a moto server through a StallingProxy, its config re-read from S3 on
    every request; yields the proxy and an API key."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = StallingProxy(host, port)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="voice-config")
        s3.put_object(Bucket="voice-config", Key="voice.yaml", Body=CONFIG_FILE.read_bytes())
        monkeypatch.setenv("VOICE_CONFIG_TTL_SECONDS", "0")
        client = boto3.client("dynamodb")
        create_sessions_table(client, TABLE)
        report_capacity(client, TABLE, free=10)
        monkeypatch.setenv("SESSIONS_TABLE", TABLE)
        monkeypatch.setenv("VOICE_CONFIG_URI", "s3://voice-config/voice.yaml")
        monkeypatch.setenv("LIVEKIT_URL", unreachable_livekit_url())
        monkeypatch.setenv("LIVEKIT_API_KEY", DEV_LIVEKIT_KEY)
        monkeypatch.setenv("LIVEKIT_API_SECRET", DEV_LIVEKIT_SECRET)
        reset_control_plane()
        from functions.wiring import get_container

        key, _ = get_container().keys.create("alice")
        yield proxy, key
    finally:
        reset_control_plane()
        proxy.close()
        # moto's server keeps its state in the process: empty it for the next test.
        urllib.request.urlopen(
            urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
        ).close()
        server.stop()


def test_a_stalled_table_answers_503_with_retry_after_within_the_budget_then_recovers(
    stalling_table: tuple[StallingProxy, str],
) -> None:
    proxy, key = stalling_table
    headers = {"x-api-key": key, "content-type": "application/json"}
    assert invoke("POST", f"{BASE}/session", headers=headers, json={}).status == 201

    proxy.freeze()
    for method, path in (("POST", "/session"), ("GET", "/sessions")):
        started = time.monotonic()
        body = {"json": {}} if method == "POST" else {}
        r = invoke(method, f"{BASE}{path}", headers=headers, **body)
        took = time.monotonic() - started
        assert r.status == 503, r.body
        assert r.body["error"] == "dependency_unavailable"
        assert "try again" in r.body["message"]
        assert int(r.headers["retry-after"]) > 0
        assert took <= STALLED_RESPONSE_BOUND_S, f"{method} {path} took {took:.2f} s"

    proxy.thaw()
    r = invoke("POST", f"{BASE}/session", headers=headers, json={})
    assert r.status == 201, r.body


def test_a_config_refresh_from_a_stalled_s3_stops_at_the_requests_budget(
    stalling_table: tuple[StallingProxy, str],
) -> None:
    from voice.aws_budget import aws_budget
    from voice.config import ConfigError, load_config

    proxy, _ = stalling_table
    assert load_config("s3://voice-config/voice.yaml").config.realtime.enabled
    proxy.freeze()
    started = time.monotonic()
    # A request that passed its key check just before the stall, then refreshes the config.
    with aws_budget(1.0), pytest.raises(ConfigError, match="cannot read config"):
        load_config("s3://voice-config/voice.yaml")
    took = time.monotonic() - started
    assert took <= 1.5, f"the refresh took {took:.2f} s of a 1 s budget"


def test_requests_side_by_side_in_one_process_each_answer_within_their_budget(
    stalling_table: tuple[StallingProxy, str],
) -> None:
    # As the local API serves several requests in one process: their sharded reads share one
    # pool of threads, and a read queued behind another request's stalled reads spends budget.
    proxy, key = stalling_table
    headers = {"x-api-key": key, "content-type": "application/json"}
    assert invoke("POST", f"{BASE}/session", headers=headers, json={}).status == 201
    proxy.freeze()
    took: list[float] = []
    statuses: list[int] = []

    def create() -> None:
        started = time.monotonic()
        r = invoke("POST", f"{BASE}/session", headers=headers, json={})
        took.append(time.monotonic() - started)
        statuses.append(r.status)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    proxy.thaw()
    assert statuses == [503] * 4, statuses
    assert max(took) <= STALLED_RESPONSE_BOUND_S, sorted(took)
    print("TOOK", sorted(took))


def test_a_report_read_from_a_stalled_s3_stops_at_the_requests_budget(
    stalling_table: tuple[StallingProxy, str],
) -> None:
    # An ended session's usage comes from its report in S3: a stalled bucket costs the read its
    # usage figures (None), not the response, and not more than the request's budget.
    from functions.store.reports import ReportStore
    from voice.aws_budget import aws_budget

    proxy, _ = stalling_table
    boto3.client("s3").create_bucket(Bucket="reports")
    reports = ReportStore("reports")
    assert reports.usage("no-such-session") is None  # answered: no report yet
    proxy.freeze()
    started = time.monotonic()
    with aws_budget(1.0):
        assert reports.usage("no-such-session") is None
    took = time.monotonic() - started
    proxy.thaw()
    assert took <= 1.5, f"the report read took {took:.2f} s of a 1 s budget"
