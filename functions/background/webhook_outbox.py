"""SQS-triggered Lambda: delivers the customer webhooks waiting in the outbox queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from functions.domain.events import OutboxMessage
from functions.observability import logger, metrics
from functions.wiring import get_container

_METRIC = {
    "delivered": "WebhooksDelivered",
    "retrying": "WebhookDeliveryFailures",
    "dead_lettered": "WebhooksDeadLettered",
}


def deliver_records(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Delivers each SQS record once; the ones that could not be handled go back to the queue."""
    failures: list[dict[str, str]] = []
    webhooks = get_container().customer_webhooks
    for record in records:
        try:
            message = OutboxMessage.model_validate_json(record["body"])
        except ValidationError:
            logger.error("unreadable outbox message dropped", extra={"id": record["messageId"]})
            continue
        try:
            outcome = webhooks.deliver(message)
        except Exception:
            # The queue or the table is unreachable: SQS redelivers it, then its DLQ keeps it.
            logger.exception("outbox message not handled", extra={"event_id": message.event_id})
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if outcome in _METRIC:
            metrics.add_metric(name=_METRIC[outcome], unit="Count", value=1)
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return deliver_records(event.get("Records", []))
