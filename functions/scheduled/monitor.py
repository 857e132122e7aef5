"""Scheduled Lambda: runs the health check and publishes it as metrics for the alarms."""

from __future__ import annotations

from typing import Any

from functions.scheduled.job import publish, scheduled_handler
from functions.wiring import get_container


async def check_once() -> dict[str, Any]:
    health = await get_container().sessions.health()
    publish(
        {
            "LiveKitReachable": 1 if health.livekit_connected else 0,
            "ActiveSessions": health.active_sessions,
            "ActiveRooms": health.active_rooms,
        }
    )
    return {
        "status": health.status,
        "livekit_connected": health.livekit_connected,
        "active_sessions": health.active_sessions,
        "active_rooms": health.active_rooms,
    }


handler = scheduled_handler(check_once)
