"""Customer webhooks end to end in the control plane: LiveKit events → outbox (moto SQS) → a real
HTTP receiver, signed, retried after failures, dead-lettered when the receiver stays broken."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from functions.sessions.customer_webhooks import RetryPolicy
from infra.local.outbox import poll_once
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import event_body, post_event
from tests.support.outbox import drain_until, use_webhook_queues
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver
from voice.report import SessionReport, TranscriptEntry, TurnLatency, Usage, report_key

BASE = "/voice/realtime"
SECRET = "whsec-integration"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET)) as server:
        yield server


@pytest.fixture
def queues(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return use_webhook_queues(monkeypatch, SECRET)


Configure = Callable[..., None]


@pytest.fixture
def configure(queues: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Points the control plane at a config whose voice.realtime.webhooks are the given keys."""

    def use(**webhooks: object) -> None:
        path = config_with(tmp_path / "voice.yaml", {"webhooks": webhooks})
        monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
        reset_control_plane()

    return use


def new_live_session(cp: ControlPlane, **body: object) -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(), json=body)
    assert r.status == 201, r.body
    s = r.body
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    post_event(event_body("participant_joined", s["room_name"], "agent-AJ_1", agent=True))
    return s


def put_report(cp: ControlPlane, session_id: str, room: str) -> None:
    report = SessionReport(
        session_id=session_id,
        room=room,
        job_id="AJ_1",
        agent_type="single_agent",
        started_at="2026-01-01T00:00:00+00:00",
        ended_at="2026-01-01T00:00:30+00:00",
        duration_s=30.0,
        transcript=[
            TranscriptEntry(role="assistant", text="Hello!", at="2026-01-01T00:00:01+00:00"),
            TranscriptEntry(role="user", text="Opening hours?", at="2026-01-01T00:00:05+00:00"),
        ],
        turns=[TurnLatency(at="2026-01-01T00:00:06+00:00", end_to_end_ms=640.0)],
        usage=Usage(stt_audio_seconds=2.5, llm_prompt_tokens=120, tts_characters=42),
    )
    boto3.client("s3").put_object(
        Bucket=cp.reports_bucket,
        Key=report_key(session_id),
        Body=report.model_dump_json().encode(),
    )


def test_started_is_sent_signed_once_caller_and_agent_are_in_with_the_session_as_get_shows_it(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
) -> None:
    configure(url=receiver.hook_url)
    s = new_live_session(control_plane)
    hooks = receiver.receiver
    drain_until(queues, lambda: bool(hooks.deliveries), "session.started")

    [delivery] = hooks.deliveries
    assert delivery.signature_ok, delivery.signature
    event = delivery.event
    assert event["type"] == "session.started"
    assert set(event) == {"id", "type", "created_at", "session"}
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert event["session"] == shown.body
    assert event["session"]["status"] == "active" and event["session"]["agent_joined"]


def test_ended_waits_for_the_worker_report_and_carries_it_while_the_api_never_waits(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
) -> None:
    configure(url=receiver.hook_url, events=["session.ended"])
    s = new_live_session(control_plane)
    ended = invoke("DELETE", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert ended.status == 200
    hooks = receiver.receiver
    # Delivery is the outbox consumer's job: the API answered before anyone called the receiver.
    assert hooks.deliveries == []

    # No report yet: the consumer puts the event back to wait for it rather than sending it bare.
    sqs = boto3.client("sqs")
    assert poll_once(sqs, queues["voice-webhooks-local"]) == 1
    assert hooks.deliveries == []

    put_report(control_plane, s["session_id"], s["room_name"])
    drain_until(queues, lambda: bool(hooks.deliveries), "session.ended")
    [event] = hooks.events()
    assert event["type"] == "session.ended"
    assert event["session"]["status"] == "ended"
    report = event["report"]
    assert report["end_reason"] == "ended_by_api"
    assert report["transcript"] == [
        {"role": "assistant", "text": "Hello!", "started_at": "2026-01-01T00:00:01+00:00"},
        {"role": "user", "text": "Opening hours?", "started_at": "2026-01-01T00:00:05+00:00"},
    ]
    assert report["usage"]["llm_prompt_tokens"] == 120
    assert report["turns"][0]["end_to_end_ms"] == 640.0
    assert report["recording_url"] is None


def test_a_failing_receiver_gets_the_same_event_again_until_it_accepts(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
) -> None:
    configure(url=receiver.hook_url)
    hooks = receiver.receiver
    hooks.fail_first = 2
    new_live_session(control_plane)
    drain_until(queues, lambda: len(hooks.deliveries) >= 3, "the third attempt")

    ids = {d.event["id"] for d in hooks.deliveries}
    assert len(ids) == 1, "every retry carries the same event id"
    assert all(d.signature_ok for d in hooks.deliveries)
    assert [e["type"] for e in hooks.accepted()] == ["session.started"]


def test_an_event_emitted_twice_reaches_the_receiver_under_one_id(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
) -> None:
    configure(url=receiver.hook_url)
    s = new_live_session(control_plane)
    # A re-dispatched agent joins again: started is emitted again, with the same id.
    post_event(event_body("participant_joined", s["room_name"], "agent-AJ_2", agent=True))
    hooks = receiver.receiver
    drain_until(queues, lambda: len(hooks.deliveries) >= 2, "both deliveries")
    assert len(hooks.deliveries) == 2
    assert len(hooks.accepted()) == 1


def test_a_receiver_that_stays_broken_ends_in_the_dead_letter_queue(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_WINDOW_SECONDS", "3")
    configure(url=receiver.hook_url)
    hooks = receiver.receiver
    hooks.fail_first = 1000
    new_live_session(control_plane)
    sqs = boto3.client("sqs")

    def dead_lettered() -> bool:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queues["voice-webhooks-dlq-local"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) == 1

    drain_until(queues, dead_lettered, "the dead letter")
    # Attempts at 0 s, 1 s and 3 s: the third comes 3 s after the first, the window; then the DLQ.
    assert len(hooks.deliveries) == 3


def test_no_url_means_no_events(
    control_plane: ControlPlane, queues: dict[str, str], configure: Configure
) -> None:
    configure(url=None)
    new_live_session(control_plane)
    assert poll_once(boto3.client("sqs"), queues["voice-webhooks-local"]) == 0


def test_the_default_retry_schedule_keeps_trying_for_over_an_hour() -> None:
    policy = RetryPolicy()
    attempts = next(n for n in range(1, 100) if policy.gives_up_after(n))
    last_attempt_at = policy.waited(attempts - 1)
    assert 3600 <= last_attempt_at < 3600 + 900
    assert all(policy.delay(n) <= 900 for n in range(1, attempts + 1))
    print(f"\n{attempts} attempts, the last {last_attempt_at / 60:.0f} min after the first")


def test_every_delivery_attempt_and_its_outcome_is_readable_by_the_owner_only(
    control_plane: ControlPlane,
    queues: dict[str, str],
    receiver: ReceiverServer,
    configure: Configure,
) -> None:
    configure(url=receiver.hook_url)
    hooks = receiver.receiver
    hooks.fail_first = 1
    s = new_live_session(control_plane)
    drain_until(queues, lambda: len(hooks.accepted()) == 1, "the accepted retry")

    r = invoke("GET", f"{BASE}/session/{s['session_id']}/webhooks", headers=control_plane.headers())
    assert r.status == 200, r.body
    attempts = r.body["deliveries"]
    assert [(a["type"], a["attempt"], a["outcome"]) for a in attempts] == [
        ("session.started", 1, "retrying"),
        ("session.started", 2, "delivered"),
    ]
    assert attempts[0]["detail"], "a failed attempt says what went wrong"
    assert attempts[1]["detail"] is None
    assert attempts[0]["event_id"] == attempts[1]["event_id"]

    r = invoke(
        "GET", f"{BASE}/session/{s['session_id']}/webhooks", headers=control_plane.headers("bob")
    )
    assert r.status == 404
    assert r.body["error"] == "not_found"
