"""Scheduled Lambda: runs the reaper once and publishes its counts as EMF metrics."""

from __future__ import annotations

from typing import Any

from functions.background.job import publish, scheduled_handler
from functions.observability import logger
from functions.wiring import get_container


async def reap_once() -> dict[str, Any]:
    counts = await get_container().reaper.run()
    publish(counts.metrics())
    # After the rules: what they left behind is repaired where safe, the rest counted.
    audit = await get_container().audit.run(repair=True)
    publish(audit.metrics())
    if audit.findings:
        logger.warning("audit findings", extra={"audit": audit.model_dump(mode="json")})
    return (
        counts.metrics()
        | audit.metrics()
        | {"livekit_reachable": counts.livekit_reachable, "out_of_time": counts.out_of_time}
    )


handler = scheduled_handler(reap_once)
