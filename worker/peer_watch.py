"""Takes over the calls of a peer worker that died whole (SIGKILL, a lost host or task).

Its agents would stay in their rooms, silent, until LiveKit's peer connections time out (~20 s).
Every worker reads the fleet's heartbeats; when a peer's stop for `DEAD_AFTER_INTERVALS`, one
worker claims it (a conditional write, so exactly one acts) and removes its agents from their
rooms. LiveKit's participant_left webhook then has the control plane send a new agent, within
the re-dispatch cap, which resumes the conversation without greeting (`worker/carry.py`). The
control plane's agent watchdog and reaper stay the backstop when this does not happen.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from voice.table import FLEET_PK, Heartbeat, every_shard
from worker.heartbeat import PEER_READERS, UNREGISTERED
from worker.job_loss import remove_agent
from worker.logs import logger
from worker.settings import WorkerEnv
from worker.tasks import stop_task

# Missed heartbeats before a peer counts as dead: two, so one slow write (a busy
# host, a slow table) never has a live worker's calls taken from it.
DEAD_AFTER_INTERVALS = 2.0
# A peer dead longer than this is left alone: its calls ended or the control plane's backstops
# (watchdog, reaper) dealt with them.
TAKEOVER_WINDOW = timedelta(minutes=5)


class FleetTable:
    """The FLEET partitions as the worker sees them: read every heartbeat, claim a dead peer's."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        # The shards' reads run side by side (boto3 clients are thread-safe).
        self._pool = ThreadPoolExecutor(max_workers=PEER_READERS, thread_name_prefix="peer-watch")

    def heartbeats(self) -> list[Heartbeat]:
        """Every worker's heartbeat: each FLEET shard is read, side by side."""
        shards = list(self._pool.map(self._shard, every_shard(FLEET_PK)))
        return [beat for shard in shards for beat in shard]

    def _shard(self, pk: str) -> list[Heartbeat]:
        beats: list[Heartbeat] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        while True:
            page = self._client.query(**kwargs)
            beats += [Heartbeat.from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return beats
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim(self, beat: Heartbeat, by: str) -> bool:
        """True for the one worker whose claim lands; False if another did, or the peer beat."""
        claimed = beat.model_copy(update={"taken_over_by": by})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=claimed.to_item(),
                ConditionExpression="#at = :at AND attribute_not_exists(taken_over_by)",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"S": beat.at_text}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def orphaned(beat: Heartbeat, me: str, now: datetime, interval: float) -> bool:
    """A peer's heartbeat that stopped while its agents were in rooms, not yet taken over."""
    silent = now - beat.at
    return (
        beat.worker_id != me
        and beat.taken_over_by is None
        and bool(beat.rooms)
        and timedelta(seconds=interval * DEAD_AFTER_INTERVALS) < silent < TAKEOVER_WINDOW
    )


class _Server(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def draining(self) -> bool: ...


class _Reporter(Protocol):
    @property
    def healthy_since(self) -> float | None: ...


class PeerWatch:
    """Twice a heartbeat interval: looks for dead peers and takes over their calls.

    A peer counts as dead only once this worker has itself been writing its heartbeats while
    watching the peer's stay unchanged for `DEAD_AFTER_INTERVALS`: after a stall of the table
    every worker's heartbeat is old, and none may take the others' calls for that.
    """

    def __init__(
        self,
        server: _Server,
        reporter: _Reporter,
        fleet: FleetTable,
        env: WorkerEnv,
        *,
        interval: float,
    ) -> None:
        self._server = server
        self._reporter = reporter
        self._fleet = fleet
        self._env = env
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        # Per peer: the heartbeat last read, and since when (monotonic) it has not changed.
        self._seen: dict[str, tuple[datetime, float]] = {}

    def start(self, *_: Any) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="peer_watch")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval / 2)
            try:
                await self.look()
            except Exception as exc:  # a failed look is retried at the next interval
                logger.warning("peer watch failed", error=f"{type(exc).__name__}: {exc}")

    async def look(self) -> list[str]:
        """One pass; returns the rooms whose dead agents this worker removed."""
        me = self._server.id
        healthy_since = self._reporter.healthy_since
        # Only a registered worker that can write its own heartbeats judges others': a worker
        # cut off from the table would see every peer as dead.
        if me == UNREGISTERED or self._server.draining or healthy_since is None:
            return []
        beats = await asyncio.to_thread(self._fleet.heartbeats)
        now, watched_at = datetime.now(UTC), time.monotonic()
        self._seen = {
            b.worker_id: self._seen[b.worker_id]
            if b.worker_id in self._seen and self._seen[b.worker_id][0] == b.at
            else (b.at, watched_at)
            for b in beats
        }
        removed: list[str] = []
        for beat in beats:
            unchanged_since = max(self._seen[beat.worker_id][1], healthy_since)
            watched = watched_at - unchanged_since >= self._interval * DEAD_AFTER_INTERVALS
            if (
                watched
                and orphaned(beat, me, now, self._interval)
                and await asyncio.to_thread(self._fleet.claim, beat, me)
            ):
                removed += await self._take_over(beat, now)
        return removed

    async def _take_over(self, beat: Heartbeat, now: datetime) -> list[str]:
        silent = round((now - beat.at).total_seconds(), 1)
        logger.warning(
            "peer worker stopped heartbeating: taking over its calls",
            peer=beat.worker_id,
            silent_s=silent,
            rooms=len(beat.rooms),
        )
        results = await asyncio.gather(
            *(
                remove_agent(
                    self._env, r.room, r.identity, {"room": r.room, "peer": beat.worker_id}
                )
                for r in beat.rooms
            )
        )
        removed = [r.room for r, ok in zip(beat.rooms, results, strict=True) if ok]
        for room in removed:
            logger.warning(
                "dead peer's agent removed from the room", room=room, peer=beat.worker_id
            )
        return removed
