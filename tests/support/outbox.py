"""The customer-webhook outbox in moto: its queues for the control plane, and draining them."""

from __future__ import annotations

import time
from collections.abc import Callable

import boto3
import pytest

from infra.local.aws import create_webhook_queues
from infra.local.outbox import poll_once

QUEUE = "voice-webhooks-local"
DLQ = "voice-webhooks-dlq-local"


def use_webhook_queues(monkeypatch: pytest.MonkeyPatch, secret: str) -> dict[str, str]:
    """Creates the outbox queues and points the control plane at them (retries after 1 s)."""
    sqs = boto3.client("sqs")
    create_webhook_queues(sqs)
    urls = {name: sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in (QUEUE, DLQ)}
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", urls[QUEUE])
    monkeypatch.setenv("WEBHOOK_DLQ_URL", urls[DLQ])
    monkeypatch.setenv("VOICE_WEBHOOK_SECRET", secret)
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", "1")
    monkeypatch.setenv("WEBHOOK_REPORT_WAIT_SECONDS", "600")
    return urls


def drain_until(queues: dict[str, str], done: Callable[[], bool], what: str) -> None:
    """Runs the outbox consumer (as the SQS trigger would) until `done()`; delayed retries included."""
    sqs = boto3.client("sqs")
    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if not poll_once(sqs, queues[QUEUE]):
            time.sleep(0.2)
