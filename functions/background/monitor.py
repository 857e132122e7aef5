"""Scheduled Lambda: runs the health check and publishes it as metrics for the alarms."""

from __future__ import annotations

from typing import Any

from functions.background.job import publish, scheduled_handler
from functions.observability import logger
from functions.sessions.admission import Admission
from functions.sessions.service import utcnow
from functions.store.errors import StoreError
from functions.wiring import get_container


async def check_once() -> dict[str, Any]:
    container = get_container()
    health = await container.sessions.health()
    publish(
        {
            "LiveKitReachable": 1 if health.livekit_connected else 0,
            "ActiveSessions": health.active_sessions,
            "ActiveRooms": health.active_rooms,
        }
    )
    publish_capacity(container.admission)
    rolled_back = judge_canaries()
    return {
        "status": health.status,
        "livekit_connected": health.livekit_connected,
        "active_sessions": health.active_sessions,
        "active_rooms": health.active_rooms,
        "rolled_back": rolled_back,
    }


def judge_canaries() -> list[str]:
    """Rolls back every canary worse than its baseline (voice.realtime.rollout); their agents."""
    try:
        rolled = get_container().rollout.check()
    except StoreError:
        logger.warning("canaries not judged")
        return []
    publish({"AgentRollbacks": len(rolled)})
    return [a.agent_id for a in rolled]


def publish_capacity(admission: Admission) -> None:
    """The fleet as admission sees it; FleetAvailableSlots below 1 scales the workers out."""
    try:
        cap = admission.capacity(utcnow())
    except StoreError:
        logger.warning("fleet capacity not read")
        return
    publish(
        {
            "FleetFreeSlots": cap.free_slots,
            "FleetTotalSlots": cap.total_slots,
            "FleetWorkers": cap.workers,
            "UnjoinedSessions": cap.unjoined,
            "FleetAvailableSlots": cap.available,
        }
    )


handler = scheduled_handler(check_once)
