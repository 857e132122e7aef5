"""Capacity heartbeats: the worker's free and total call slots, in the sessions table for admission."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sized
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from voice.table import Heartbeat
from worker.emf import EmfEmitter
from worker.logs import logger

UNREGISTERED = "unregistered"
# A heartbeat counts this many intervals: one lost write does not make the worker vanish.
VALID_INTERVALS = 3
# Logged once the first heartbeat is in: from then on admission counts this worker.
FIRST_HEARTBEAT = "capacity reported"


class HeartbeatWriter:
    """Puts one heartbeat item per worker (IAM allows PutItem on the FLEET partitions only)."""

    def __init__(self, client: Any, table: str, agent_name: str, interval: float) -> None:
        self._client = client
        self._table = table
        self._agent_name = agent_name
        self._valid_for = timedelta(seconds=interval * VALID_INTERVALS)

    def write(self, worker_id: str, free: int, total: int, *, final: bool = False) -> Heartbeat:
        now = datetime.now(UTC)
        beat = Heartbeat(
            worker_id=worker_id,
            agent_name=self._agent_name,
            free_slots=free,
            total_slots=total,
            at=now,
            # A worker that is leaving lapses at once instead of counting for a while longer.
            valid_until=now if final else now + self._valid_for,
        )
        self._client.put_item(TableName=self._table, Item=beat.to_item())
        return beat


class _Server(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def draining(self) -> bool: ...
    @property
    def active_jobs(self) -> Sized: ...


class CapacityReporter:
    """Every interval: a heartbeat for admission, and FreeSlots / TotalSlots as EMF for scaling."""

    def __init__(
        self,
        server: _Server,
        writer: HeartbeatWriter | None,
        *,
        total: int,
        interval: float,
        emf: EmfEmitter,
        metric_interval: float = 60.0,
    ) -> None:
        self._server = server
        self._writer = writer
        self._total = total
        self._interval = interval
        self._emf = emf
        self._metric_interval = metric_interval
        self._next_metric = 0.0
        self._task: asyncio.Task[None] | None = None
        self._reported = False

    def free(self) -> int:
        if self._server.draining:
            return 0
        return max(0, self._total - len(self._server.active_jobs))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    def registered(self, *_: object) -> None:
        """Reports at once on (re-)registration: a new worker is capacity from its first second."""
        asyncio.get_running_loop().create_task(self.beat(), name="heartbeat_registered")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.beat(final=True)

    async def _run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self._interval)

    async def beat(self, *, final: bool = False) -> None:
        free = 0 if final else self.free()
        # Once a minute per task (like ActiveJobs), so a Sum over a minute is the fleet's figure.
        if time.monotonic() >= self._next_metric:
            self._emf.emit({"FreeSlots": (free, "Count"), "TotalSlots": (self._total, "Count")})
            self._next_metric = time.monotonic() + self._metric_interval
        worker_id = self._server.id
        # Before registration LiveKit would drop a dispatch to this worker: it is not capacity yet.
        if self._writer is None or worker_id == UNREGISTERED:
            return
        try:
            await asyncio.to_thread(self._writer.write, worker_id, free, self._total, final=final)
        except Exception as exc:  # a lost heartbeat lapses on its own; the worker goes on
            logger.warning("heartbeat not written", error=f"{type(exc).__name__}: {exc}")
            return
        if not self._reported:
            self._reported = True
            logger.info(FIRST_HEARTBEAT, worker_id=worker_id, free=free, total=self._total)
