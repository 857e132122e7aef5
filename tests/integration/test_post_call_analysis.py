"""Post-call analysis through its trigger: a report stored in the (moto) bucket notifies the analysis
queue, the Lambda handler runs on that SQS batch against the deterministic model server, and the
result reaches GET /session/{id} and the signed `session.analyzed` webhook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.aws import create_analysis_trigger
from infra.local.outbox import poll_once
from infra.local.stack import free_port
from tests.integration.test_customer_webhooks import new_live_session, put_report
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.fake_openai import ANALYSIS_SCHEMA, FakeOpenAI, FakeOpenAIServer
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.outbox import drain_until, use_webhook_queues
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver

BASE = "/voice/realtime"
SECRET = "whsec-analysis"
FIELDS = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "enum": ["opening_hours", "booking", "other"]},
        "callback_requested": {"type": "boolean"},
        "party_size": {"type": "integer", "minimum": 1},
    },
    "required": ["topic", "callback_requested", "party_size"],
    "additionalProperties": False,
}
CRITERIA = "The caller learned the opening hours."


@pytest.fixture
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(free_port(), FakeOpenAI()) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET)) as server:
        yield server


@pytest.fixture
def analysis_queue(control_plane: ControlPlane) -> str:
    url = create_analysis_trigger(
        boto3.client("sqs"), boto3.client("s3"), control_plane.reports_bucket
    )
    # Setting the notification makes S3 send its test event; the handler takes it as nothing.
    assert trigger(url) == 1
    assert trigger(url) == 0
    return url


Configure = Callable[..., None]


@pytest.fixture
def configure(
    control_plane: ControlPlane,
    model: FakeOpenAIServer,
    receiver: ReceiverServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Configure:
    def use(**analysis: Any) -> None:
        settings = {
            "enabled": True,
            "base_url": model.base_url,
            "success_criteria": CRITERIA,
            "fields_schema": FIELDS,
            "max_attempts": 1,
            "timeout_seconds": 5,
        } | analysis
        path = config_with(
            tmp_path / "voice.yaml",
            {
                "analysis": settings,
                "webhooks": {"url": receiver.hook_url, "events": ["session.analyzed"]},
            },
        )
        monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
        reset_control_plane()

    return use


def trigger(queue_url: str) -> int:
    """Runs the analysis Lambda's handler on what the queue holds, as the SQS trigger would."""
    from functions.background.analysis import handler

    return poll_once(
        boto3.client("sqs"),
        queue_url,
        lambda records: handler({"Records": records}, LambdaContext()),
    )


def ended_call(cp: ControlPlane) -> dict[str, Any]:
    s = new_live_session(cp)
    assert invoke("DELETE", f"{BASE}/session/{s['session_id']}", headers=cp.headers()).status == 200
    put_report(cp, s["session_id"], s["room_name"])
    return s


@pytest.fixture
def queues(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return use_webhook_queues(monkeypatch, SECRET)


def test_a_stored_report_is_analysed_once_and_shown_with_the_session_and_sent_signed(
    control_plane: ControlPlane,
    analysis_queue: str,
    queues: dict[str, str],
    configure: Configure,
    model: FakeOpenAIServer,
    receiver: ReceiverServer,
) -> None:
    configure()
    s = ended_call(control_plane)
    assert trigger(analysis_queue) == 1

    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    analysis = shown.body["analysis"]
    assert analysis["status"] == "ok", analysis
    assert analysis["summary"] == "The caller said: Opening hours?"
    assert analysis["success"] == {
        "verdict": True,
        "reason": "The caller's question was answered.",
    }
    assert analysis["fields"] == {
        "topic": "opening_hours",
        "callback_requested": True,
        "party_size": 1,
    }
    assert analysis["attempts"] == 1
    # The model saw the report's transcript and was asked for exactly the configured shape.
    [request] = [r for r in model.fake.of("/v1/chat/completions")]
    spec = request.body["response_format"]["json_schema"]
    assert spec["name"] == ANALYSIS_SCHEMA
    assert spec["schema"]["properties"]["fields"] == FIELDS
    assert "Opening hours?" in request.body["messages"][-1]["content"]
    assert CRITERIA in request.body["messages"][0]["content"]

    hooks = receiver.receiver
    drain_until(queues, lambda: bool(hooks.deliveries), "session.analyzed")
    [delivery] = hooks.deliveries
    assert delivery.signature_ok
    assert delivery.event["type"] == "session.analyzed"
    assert delivery.event["session"] == shown.body
    assert "report" not in delivery.event or delivery.event["report"] is None

    # S3 notifies at least once: the same report again is not analysed (nor announced) twice.
    put_report(control_plane, s["session_id"], s["room_name"])
    assert trigger(analysis_queue) == 1
    assert len(model.fake.of("/v1/chat/completions")) == 1


def test_an_answer_off_the_schema_is_asked_for_once_more(
    control_plane: ControlPlane,
    analysis_queue: str,
    queues: dict[str, str],
    configure: Configure,
    model: FakeOpenAIServer,
) -> None:
    configure()
    model.fake.bad_analyses = 1
    s = ended_call(control_plane)
    trigger(analysis_queue)
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert shown.body["analysis"]["status"] == "ok"
    assert shown.body["analysis"]["attempts"] == 2
    assert len(model.fake.of("/v1/chat/completions")) == 2


def test_an_answer_off_the_schema_twice_is_stored_as_an_error_never_as_data(
    control_plane: ControlPlane,
    analysis_queue: str,
    queues: dict[str, str],
    configure: Configure,
    model: FakeOpenAIServer,
    receiver: ReceiverServer,
) -> None:
    configure()
    model.fake.bad_analyses = 2
    s = ended_call(control_plane)
    trigger(analysis_queue)
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    analysis = shown.body["analysis"]
    assert analysis["status"] == "error"
    assert analysis["summary"] is None and analysis["fields"] is None
    assert "does not match the schema" in analysis["error"]
    assert analysis["attempts"] == 2
    hooks = receiver.receiver
    drain_until(queues, lambda: bool(hooks.deliveries), "session.analyzed")
    assert hooks.events()[0]["session"]["analysis"]["status"] == "error"


def test_a_model_that_does_not_answer_leaves_the_report_on_the_queue_for_a_later_try(
    control_plane: ControlPlane,
    analysis_queue: str,
    queues: dict[str, str],
    configure: Configure,
) -> None:
    configure(base_url=f"http://127.0.0.1:{free_port()}/v1")
    s = ended_call(control_plane)
    from functions.background.analysis import handler

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=analysis_queue, WaitTimeSeconds=1)["Messages"]
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
    answer = handler({"Records": records}, LambdaContext())
    assert answer["batchItemFailures"] == [{"itemIdentifier": messages[0]["MessageId"]}]
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert shown.body["analysis"] is None


def test_analysis_off_stores_nothing_and_a_live_session_shows_none(
    control_plane: ControlPlane,
    analysis_queue: str,
    queues: dict[str, str],
    configure: Configure,
    model: FakeOpenAIServer,
) -> None:
    configure(enabled=False)
    s = ended_call(control_plane)
    trigger(analysis_queue)
    assert model.fake.of("/v1/chat/completions") == []
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert shown.body["analysis"] is None
    live = new_live_session(control_plane)
    got = invoke("GET", f"{BASE}/session/{live['session_id']}", headers=control_plane.headers())
    assert got.body["analysis"] is None
