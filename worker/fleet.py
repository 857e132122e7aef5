"""Fleet behaviour in the main process: ECS scale-in protection, job slots, ActiveJobs EMF."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from worker.emf import EmfEmitter
from worker.logs import logger
from worker.tasks import stop_task


class TaskProtection:
    """ECS task scale-in protection via $ECS_AGENT_URI/task-protection/v1/state."""

    def __init__(self, agent_uri: str, *, timeout: float = 5.0) -> None:
        self.url = agent_uri.rstrip("/") + "/task-protection/v1/state"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def set(self, enabled: bool, *, expires_in_minutes: int | None = None) -> bool:
        """True when ECS accepted the change; failures are logged, never raised (a call goes on)."""
        body: dict[str, Any] = {"ProtectionEnabled": enabled}
        if enabled and expires_in_minutes is not None:
            body["ExpiresInMinutes"] = expires_in_minutes
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as http,
                http.put(self.url, json=body) as resp,
            ):
                payload = await resp.json(content_type=None)
                failure = payload.get("failure") if isinstance(payload, dict) else None
                if resp.status != 200 or failure:
                    logger.warning(
                        "task protection update refused",
                        status=resp.status,
                        enabled=enabled,
                        failure=failure,
                    )
                    return False
                return True
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("task protection update failed", enabled=enabled, error=str(exc))
            return False


class _HasJobs(Protocol):
    @property
    def active_jobs(self) -> Sized: ...


# Slot loads are whole multiples of a dyadic unit, so the library's sums and comparisons of them
# are exact: `k * unit >= max_jobs * unit` holds exactly when k >= max_jobs, with no float drift.
_UNIT_BITS = 24


@dataclass(frozen=True)
class JobSlots:
    """Capacity as `max_jobs` slots: full at exactly `max_jobs` jobs, whatever `load_threshold` is.

    The library marks a worker full when `load >= threshold` and counts accepted-but-not-started
    jobs at `load / active jobs` each. Reporting `load = jobs * unit` and giving the library
    `threshold = max_jobs * unit` makes both counts exact. `load_threshold` (the reference's key)
    sets only the load reported at full capacity, so LiveKit still sees a familiar scale.
    """

    max_jobs: int
    unit: float

    @classmethod
    def of(cls, max_jobs: int, load_threshold: float) -> JobSlots:
        unit = math.floor(load_threshold / max_jobs * 2**_UNIT_BITS) / 2**_UNIT_BITS
        return cls(max_jobs=max_jobs, unit=unit)

    @property
    def threshold(self) -> float:
        return self.max_jobs * self.unit

    def load(self, server: _HasJobs) -> float:
        return min(len(server.active_jobs), self.max_jobs) * self.unit


class FleetMonitor:
    """Polls the server's job count: protection on while any job runs, ActiveJobs every minute."""

    def __init__(
        self,
        server: _HasJobs,
        *,
        emf: EmfEmitter,
        protection: TaskProtection | None,
        protect_minutes: int,
        poll_interval: float = 1.0,
        metric_interval: float = 60.0,
    ) -> None:
        self._server = server
        self._emf = emf
        self._protection = protection
        self._protect_minutes = protect_minutes
        self._poll_interval = poll_interval
        self._metric_interval = metric_interval
        self._protected = False
        self._protected_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet_monitor")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._protected:
            await self._set_protection(False)

    async def _run(self) -> None:
        next_metric = time.monotonic()
        while True:
            active = len(self._server.active_jobs)
            await self.reconcile(active)
            now = time.monotonic()
            if now >= next_metric:
                self._emf.emit({"ActiveJobs": (active, "Count")})
                next_metric = now + self._metric_interval
            await asyncio.sleep(self._poll_interval)

    async def reconcile(self, active: int) -> None:
        if self._protection is None:
            return
        now = time.monotonic()
        # Renew at half the expiry so a long call never outlives its protection.
        renew_due = now - self._protected_at >= self._protect_minutes * 30
        if active > 0 and (not self._protected or renew_due):
            await self._set_protection(True)
        elif active == 0 and self._protected:
            await self._set_protection(False)

    async def _set_protection(self, enabled: bool) -> None:
        assert self._protection is not None
        ok = await self._protection.set(enabled, expires_in_minutes=self._protect_minutes)
        if ok:
            self._protected = enabled
            self._protected_at = time.monotonic()
            logger.info("task protection updated", enabled=enabled)
