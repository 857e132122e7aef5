"""Scheduled Lambda: runs the reaper once and publishes its counts as EMF metrics."""

from __future__ import annotations

from typing import Any

from functions.scheduled.job import publish, scheduled_handler
from functions.wiring import get_container


async def reap_once() -> dict[str, Any]:
    counts = await get_container().reaper.run()
    publish(counts.metrics())
    return counts.metrics() | {
        "livekit_reachable": counts.livekit_reachable,
        "out_of_time": counts.out_of_time,
    }


handler = scheduled_handler(reap_once)
