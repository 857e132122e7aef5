"""Scheduled Lambda: runs the reaper once and publishes its counts as EMF metrics."""

from __future__ import annotations

from typing import Any

from functions.aio import run_sync
from functions.observability import logger, metrics
from functions.wiring import get_container


async def reap_once() -> dict[str, Any]:
    counts = await get_container().reaper.run()
    for name, value in counts.metrics().items():
        metrics.add_metric(name=name, unit="Count", value=value)
    return counts.metrics() | {
        "livekit_reachable": counts.livekit_reachable,
        "out_of_time": counts.out_of_time,
    }


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict[str, Any]:
    return run_sync(reap_once())
