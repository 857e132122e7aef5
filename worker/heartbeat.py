"""Heartbeats: the worker's free and total call slots (admission reads them) and the rooms its
agents are in (a peer takes those calls over when the heartbeats stop), in the sessions table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from voice.table import Heartbeat, HeartbeatRoom
from worker.emf import EmfEmitter
from worker.logs import logger
from worker.tasks import stop_task

UNREGISTERED = "unregistered"
# A heartbeat counts this many intervals: one lost write does not make the worker vanish.
VALID_INTERVALS = 3
# ... and for admission at least this long: a worker whose writes hiccup on a busy host does not
# drop out of the fleet's capacity (peers judge a dead worker by `at`, not by this).
MIN_VALID_SECONDS = 15.0
# Logged once the first heartbeat is in: from then on admission counts this worker.
FIRST_HEARTBEAT = "capacity reported"


# Threads the peer watch reads the FLEET shards with (worker/peer_watch.py).
PEER_READERS = 8


def fleet_client() -> Any:
    """The heartbeat's own DynamoDB client: one attempt with short timeouts, so a stalled table is
    handed at most one abandoned write every two seconds per worker, never a backlog of retries;
    a write that is only slow (under 2 s) still lands, so a busy worker is not taken for dead."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        config=Config(
            connect_timeout=0.5,
            read_timeout=2.0,
            retries={"total_max_attempts": 1, "mode": "standard"},
            # The heartbeat's write and the peer watch's eight shard readers (peer_watch.py),
            # each with a connection kept: no connection opened and dropped every second.
            max_pool_connections=PEER_READERS + 1,
        ),
    )


def agent_rooms(jobs: Iterable[Any]) -> tuple[HeartbeatRoom, ...]:
    """The rooms of the worker's running jobs and their agents' identities."""
    return tuple(
        HeartbeatRoom(room=info.job.room.name, identity=info.accept_arguments.identity)
        for info in jobs
    )


class HeartbeatWriter:
    """Puts one heartbeat item per worker (IAM allows PutItem on the FLEET partitions only)."""

    def __init__(
        self, client: Any, table: str, agent_name: str, interval: float, min_valid: float = 0.0
    ) -> None:
        self._client = client
        self._table = table
        self._agent_name = agent_name
        self._valid_for = timedelta(seconds=max(interval * VALID_INTERVALS, min_valid))

    def write(
        self,
        worker_id: str,
        free: int,
        total: int,
        *,
        rooms: tuple[HeartbeatRoom, ...] = (),
        final: bool = False,
    ) -> Heartbeat:
        now = datetime.now(UTC)
        beat = Heartbeat(
            worker_id=worker_id,
            agent_name=self._agent_name,
            free_slots=free,
            total_slots=total,
            at=now,
            # A worker that is leaving lapses at once instead of counting for a while longer.
            valid_until=now if final else now + self._valid_for,
            rooms=rooms,
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
        self._failures = 0
        self._healthy_since: float | None = None

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
        await stop_task(self._task)
        self._task = None
        await self.beat(final=True)

    @property
    def healthy_since(self) -> float | None:
        """Since when (monotonic) every write went through; None while they fail."""
        return self._healthy_since

    async def _run(self) -> None:
        # Fixed rate, no back-off: a slow write does not stretch the interval peers judge this
        # worker by, and after a table stall every worker is heard again within an interval.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self.beat()
            due = max(due + self._interval, loop.time())
            await asyncio.sleep(due - loop.time())

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
        rooms = () if final else agent_rooms(self._server.active_jobs)
        try:
            await asyncio.to_thread(
                self._writer.write, worker_id, free, self._total, rooms=rooms, final=final
            )
        except Exception as exc:  # a lost heartbeat lapses on its own; the worker goes on
            self._failures += 1
            self._healthy_since = None
            if self._failures == 1:
                logger.warning("heartbeat not written", error=f"{type(exc).__name__}: {exc}")
            return
        if self._failures:
            logger.info("heartbeat written again", failed_writes=self._failures)
            self._failures = 0
        if self._healthy_since is None and not final:
            self._healthy_since = time.monotonic()
        if not self._reported:
            self._reported = True
            logger.info(FIRST_HEARTBEAT, worker_id=worker_id, free=free, total=self._total)
