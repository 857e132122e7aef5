"""Admission by fleet capacity: a new session only when some worker has a slot left for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.domain.errors import FleetAtCapacity
from functions.observability import logger
from functions.sessions.ports import FleetStorage
from voice.config.schema import AdmissionSettings


@dataclass(frozen=True)
class FleetCapacity:
    free_slots: int
    total_slots: int
    workers: int
    unjoined: int

    @property
    def available(self) -> int:
        """Slots left once every session created but not yet joined has taken one."""
        return self.free_slots - self.unjoined


@dataclass(frozen=True)
class Admission:
    fleet: FleetStorage

    def capacity(self, now: datetime) -> FleetCapacity:
        beats = self.fleet.heartbeats(now)
        return FleetCapacity(
            free_slots=sum(b.free_slots for b in beats),
            total_slots=sum(b.total_slots for b in beats),
            workers=len(beats),
            unjoined=self.fleet.count_unjoined(now),
        )

    def admit(self, settings: AdmissionSettings, now: datetime) -> None:
        """Raises `FleetAtCapacity` when no worker could serve one more session."""
        if not settings.enabled:
            return
        cap = self.capacity(now)
        if cap.available > 0:
            return
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
