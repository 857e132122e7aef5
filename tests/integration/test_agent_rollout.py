"""Automatic rollback through the monitor's Lambda entry point: moto table, reports and outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import LambdaContext, Reply, invoke
from tests.support.outbox import drain_until, use_webhook_queues
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver
from voice.report import SessionReport, TurnLatency, Usage, report_key

BASE = "/voice/realtime"
SECRET = "whsec-rollout"
ROLLOUT = {"min_sessions": 3, "failure_multiple": 2.0, "latency_margin_ms": 300}


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET)) as server:
        yield server


@pytest.fixture
def plane(
    control_plane: ControlPlane,
    receiver: ReceiverServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ControlPlane, dict[str, str]]:
    queues = use_webhook_queues(monkeypatch, SECRET)
    realtime = {
        "rollout": ROLLOUT,
        "webhooks": {"url": receiver.hook_url},
        "limits": {"max_sessions_per_user": 50},
    }
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "voice.yaml", realtime)))
    reset_control_plane()
    return control_plane, queues


def api(cp: ControlPlane, method: str, path: str, **kw: Any) -> Reply:
    headers = cp.headers() | kw.pop("headers", {})
    return invoke(method, f"{BASE}{path}", headers=headers, **kw)


def canary_agent(cp: ControlPlane) -> str:
    agent_id = api(cp, "POST", "/agents", json={"name": "sales"}).body["agent_id"]
    for _ in (1, 2):
        assert api(cp, "POST", f"/agents/{agent_id}/versions", json={"config": {}}).status == 201
    split = {"traffic": [{"version": 1, "percent": 80}, {"version": 2, "percent": 20}]}
    r = api(cp, "PUT", f"/agents/{agent_id}/traffic", json=split, headers={"If-Match": '"1"'})
    assert r.status == 200, r.body
    return agent_id


def finished_call(
    cp: ControlPlane,
    agent_id: str,
    version: int,
    errors: int = 0,
    latency_ms: float = 600.0,
    unanswered: int = 0,
) -> None:
    """A session of `version` that has ended, with the report its worker would have written."""
    r = api(cp, "POST", "/session", json={"agent_id": agent_id, "agent_version": version})
    assert r.status == 201, r.body
    session_id = r.body["session_id"]
    assert api(cp, "DELETE", f"/session/{session_id}").status == 200
    report = SessionReport(
        session_id=session_id,
        room=r.body["room_name"],
        job_id="AJ_1",
        agent_type="single_agent",
        started_at="2026-12-04T00:00:00+00:00",
        ended_at="2026-12-04T00:00:30+00:00",
        duration_s=30.0,
        transcript=[],
        turns=[TurnLatency(at="2026-12-04T00:00:06+00:00", end_to_end_ms=latency_ms)],
        usage=Usage(),
        agent_id=agent_id,
        agent_version=version,
        agent_errors=errors,
        unanswered_turns=unanswered,
    )
    boto3.client("s3").put_object(
        Bucket=cp.reports_bucket,
        Key=report_key(session_id),
        Body=report.model_dump_json().encode(),
    )


def monitor(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One monitor run: its answer, and the metrics it published."""
    from functions.background.monitor import handler

    capsys.readouterr()
    out = handler({}, LambdaContext(function_name="voice-monitor"))
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "_aws" in x]
    [emf] = [e for e in lines if "AgentRollbacks" in e]
    return out, emf


def traffic(cp: ControlPlane, agent_id: str) -> dict[str, Any]:
    return api(cp, "GET", f"/agents/{agent_id}/traffic").body


def test_a_failing_canary_is_rolled_back_recorded_announced_and_counted(
    plane: tuple[ControlPlane, dict[str, str]],
    receiver: ReceiverServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cp, queues = plane
    agent_id = canary_agent(cp)
    for _ in range(3):
        finished_call(cp, agent_id, 1)
    finished_call(cp, agent_id, 2, errors=1)
    finished_call(cp, agent_id, 2)
    # Two canary sessions are fewer than min_sessions: not judged yet.
    out, emf = monitor(capsys)
    assert out["rolled_back"] == [] and emf["AgentRollbacks"] == [0.0]
    assert len(traffic(cp, agent_id)["traffic"]) == 2

    finished_call(cp, agent_id, 2, errors=2)
    out, emf = monitor(capsys)
    assert out["rolled_back"] == [agent_id]
    assert emf["AgentRollbacks"] == [1.0]
    now = traffic(cp, agent_id)
    assert now["traffic"] == [{"version": 1, "percent": 100}]
    assert (now["action"], now["actor"]) == ("auto_rollback", "monitor")
    assert "version 2: 2 of 3 sessions failed (67%)" in now["reason"]
    assert "version 1: 0 of 3 sessions failed (0%)" in now["reason"]
    # Nothing left to judge: a second run changes nothing.
    assert monitor(capsys)[0]["rolled_back"] == []

    hooks = receiver.receiver
    drain_until(queues, lambda: bool(hooks.events("agent.rolled_back")), "agent.rolled_back")
    [event] = hooks.events("agent.rolled_back")
    assert all(d.signature_ok for d in hooks.deliveries)
    assert set(event) == {"id", "type", "created_at", "traffic"}
    assert event["traffic"] == now


def test_a_slower_canary_is_rolled_back_and_a_healthy_one_stays(
    plane: tuple[ControlPlane, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    cp, _ = plane
    healthy, slow = canary_agent(cp), canary_agent(cp)
    for agent_id, canary_ms in ((healthy, 700.0), (slow, 1200.0)):
        for _ in range(3):
            finished_call(cp, agent_id, 1, latency_ms=600.0)
            finished_call(cp, agent_id, 2, latency_ms=canary_ms)
    out, _ = monitor(capsys)
    assert out["rolled_back"] == [slow]
    assert "p95 more than 300 ms slower" in traffic(cp, slow)["reason"]
    assert len(traffic(cp, healthy)["traffic"]) == 2


def test_a_canary_leaving_callers_unanswered_is_rolled_back(
    plane: tuple[ControlPlane, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    cp, _ = plane
    agent_id = canary_agent(cp)
    for _ in range(3):
        finished_call(cp, agent_id, 1)
        finished_call(cp, agent_id, 2, unanswered=1)
    assert monitor(capsys)[0]["rolled_back"] == [agent_id]
    assert "version 2: 3 of 3 sessions failed" in traffic(cp, agent_id)["reason"]


def test_with_auto_rollback_off_the_monitor_only_watches(
    plane: tuple[ControlPlane, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cp, _ = plane
    agent_id = canary_agent(cp)
    for _ in range(3):
        finished_call(cp, agent_id, 1)
        finished_call(cp, agent_id, 2, errors=1)
    off = {"rollout": ROLLOUT | {"auto_rollback": False}}
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "off.yaml", off)))
    reset_control_plane()
    assert monitor(capsys)[0]["rolled_back"] == []
    assert len(traffic(cp, agent_id)["traffic"]) == 2
