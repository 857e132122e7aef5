"""The customer-webhook outbox on SQS: delayed sends are the retries; the DLQ keeps what gave up."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.domain.events import OutboxMessage
from functions.store.errors import StoreUnavailable
from voice.aws_budget import BudgetSpent


class SqsOutbox:
    def __init__(self, queue_url: str | None, dlq_url: str | None, client: Any = None) -> None:
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._client = client

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            from voice.aws_budget import budgeted

            # An API request that emits must not hang on a slow queue: short attempts, and
            # inside a request none past its AWS budget.
            self._client = budgeted(
                boto3.client(
                    "sqs",
                    config=Config(
                        connect_timeout=1,
                        read_timeout=2,
                        retries={"mode": "standard", "max_attempts": 2},
                    ),
                )
            )
        return self._client

    def send(self, message: OutboxMessage, delay_seconds: int = 0) -> None:
        self._send(self._queue_url, message, delay_seconds)

    def dead_letter(self, message: OutboxMessage) -> None:
        self._send(self._dlq_url, message, 0)

    def _send(self, url: str | None, message: OutboxMessage, delay: int) -> None:
        if not url:
            raise StoreUnavailable("no webhook queue configured (WEBHOOK_QUEUE_URL)")
        try:
            self._sqs().send_message(
                QueueUrl=url, MessageBody=message.model_dump_json(), DelaySeconds=delay
            )
        except (ClientError, BotoCoreError, BudgetSpent) as exc:
            raise StoreUnavailable(
                f"the webhook queue is unavailable ({type(exc).__name__})"
            ) from exc
