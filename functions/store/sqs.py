"""Delayed agent checks on SQS: the watchdog's queue (in AWS, and moto's SQS on the local stack)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.domain.events import AgentCheck
from functions.store.errors import StoreUnavailable

# SQS holds a message back for at most 15 minutes.
MAX_DELAY_SECONDS = 900


class SqsAgentChecks:
    """Sends each check with a per-message delay; SQS delivers it to the watchdog Lambda."""

    def __init__(self, client_factory: Callable[[], Any], queue_url: str) -> None:
        self._factory = client_factory
        self._queue_url = queue_url

    @cached_property
    def _client(self) -> Any:
        # Built on first use: most requests never schedule a check.
        return self._factory()

    def schedule(self, check: AgentCheck, delay_seconds: int) -> None:
        try:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=check.model_dump_json(),
                DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(
                f"the agent check queue is unavailable ({type(exc).__name__})"
            ) from exc
