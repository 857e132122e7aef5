"""What every scheduled Lambda shares: the Powertools-wrapped handler and publishing counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from functions.aio import run_sync
from functions.observability import logger, metrics

Job = Callable[[], Awaitable[dict[str, Any]]]


def publish(counts: Mapping[str, int | None]) -> None:
    """One EMF count per name; a figure that could not be read (None) is left out."""
    for name, value in counts.items():
        if value is not None:
            metrics.add_metric(name=name, unit="Count", value=value)


def scheduled_handler(job: Job) -> Callable[[dict, object], dict[str, Any]]:
    """A Lambda handler that runs `job` once on the process's event loop."""

    @logger.inject_lambda_context
    @metrics.log_metrics
    def handler(event: dict, context: object) -> dict[str, Any]:
        return run_sync(job())

    return handler
