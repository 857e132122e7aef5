"""Admission by fleet capacity: a new session only when some worker has a slot left for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.domain.errors import AgentNotServed, FleetAtCapacity
from functions.observability import logger
from functions.sessions.ports import FleetStorage
from voice.config.schema import AdmissionSettings


@dataclass(frozen=True)
class FleetCapacity:
    free_slots: int
    total_slots: int
    workers: int
    unjoined: int
    # Agent names other running workers serve (not counted above).
    other_agents: tuple[str, ...] = ()

    @property
    def available(self) -> int:
        """Slots left once every session created but not yet joined has taken one."""
        return self.free_slots - self.unjoined


@dataclass(frozen=True)
class Admission:
    fleet: FleetStorage

    def capacity(self, now: datetime, agent_name: str | None = None) -> FleetCapacity:
        """The fleet's capacity; with `agent_name`, only the workers serving that agent count."""
        beats = self.fleet.heartbeats(now)
        serving = [b for b in beats if agent_name is None or b.agent_name == agent_name]
        return FleetCapacity(
            free_slots=sum(b.free_slots for b in serving),
            total_slots=sum(b.total_slots for b in serving),
            workers=len(serving),
            unjoined=self.fleet.count_unjoined(now),
            other_agents=tuple(sorted({b.agent_name for b in beats} - {agent_name})),
        )

    def admit(self, settings: AdmissionSettings, now: datetime, agent_name: str) -> None:
        """Raises `FleetAtCapacity` when no worker serving `agent_name` could take one more
        session, `AgentNotServed` when workers run but none under that name."""
        if not settings.enabled:
            return
        cap = self.capacity(now, agent_name)
        if cap.available > 0:
            return
        if cap.workers == 0 and cap.other_agents:
            logger.error(
                "admission refused: no worker serves the configured agent name",
                extra={"agent_name": agent_name, "served": list(cap.other_agents)},
            )
            raise AgentNotServed(
                f"no running worker serves agent '{agent_name}' "
                f"(voice.realtime.worker.agent_name); the workers serve "
                f"{', '.join(repr(n) for n in cap.other_agents)}. A rename needs workers under "
                "the new name first: start them with it (OPENAGENTS_LIVEKIT_AGENT_NAME or the new "
                "config), then push the config; or put the old name back. "
                f"Retry after {settings.retry_after} s",
                settings.retry_after,
            )
        logger.warning("admission refused: fleet at capacity", extra={"capacity": vars(cap)})
        if cap.workers == 0:
            why = "no agent worker has reported in"
        else:
            why = (
                f"{cap.workers} worker(s) report {cap.free_slots} free slot(s) and "
                f"{cap.unjoined} session(s) created but not yet joined hold them"
            )
        raise FleetAtCapacity(
            f"no agent worker has a free slot for a new session ({why}); "
            f"retry after {settings.retry_after} s",
            settings.retry_after,
        )
