"""Scheduled Lambda: runs the health check and publishes it as metrics for the alarms."""

from __future__ import annotations

from typing import Any

from functions.aio import run_sync
from functions.observability import logger, metrics
from functions.wiring import get_container


async def check_once() -> dict[str, Any]:
    health = await get_container().sessions.health()
    metrics.add_metric(
        name="LiveKitReachable", unit="Count", value=1 if health.livekit_connected else 0
    )
    if health.active_sessions is not None:
        metrics.add_metric(name="ActiveSessions", unit="Count", value=health.active_sessions)
    if health.active_rooms is not None:
        metrics.add_metric(name="ActiveRooms", unit="Count", value=health.active_rooms)
    return {
        "status": health.status,
        "livekit_connected": health.livekit_connected,
        "active_sessions": health.active_sessions,
        "active_rooms": health.active_rooms,
    }


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict[str, Any]:
    return run_sync(check_once())
