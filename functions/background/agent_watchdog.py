"""SQS-fed Lambda: runs each delayed agent check; one that cannot run is retried, then dead-lettered."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from functions.aio import run_sync
from functions.domain.errors import DependencyUnavailable
from functions.domain.events import AgentCheck
from functions.observability import logger, metrics
from functions.wiring import get_container

_METRICS = {"redispatched": "AgentRedispatched", "failed": "SessionsFailedNoAgent"}


async def run_checks(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs the checks of an SQS batch; the answer names the messages SQS should deliver again."""
    watchdog = get_container().watchdog
    failures: list[dict[str, str]] = []
    for record in records:
        try:
            check = AgentCheck.model_validate_json(record["body"])
        except ValidationError:
            # Retrying cannot fix it; dropped with a log line rather than poisoning the queue.
            logger.error("malformed agent check dropped", extra={"message_id": record["messageId"]})
            continue
        if watchdog is None:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        try:
            outcome = await watchdog.check(check)
        except DependencyUnavailable as exc:
            logger.warning(
                "agent check deferred", extra={"session_id": check.session_id, "why": exc.message}
            )
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        logger.info("agent check", extra={"session_id": check.session_id, "outcome": outcome})
        if outcome in _METRICS:
            metrics.add_metric(name=_METRICS[outcome], unit="Count", value=1)
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return run_sync(run_checks(event.get("Records", [])))
