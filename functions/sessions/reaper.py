"""The reaper: the backstop for lost webhooks. It expires, ends and cleans up, bounded per run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from functions.domain.models import Backlog, SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions.service import Clock, SessionService

# An active session's room may not be listed yet right after the join; leave it alone this long.
ROOM_GONE_GRACE = timedelta(minutes=2)
# An agent joins within a second or two of the caller; one still missing after this never will
# (LiveKit drops a dispatch that finds no registered worker and does not retry it).
AGENT_JOIN_GRACE = timedelta(seconds=30)


Counter = Literal[
    "expired",
    "ended_over_duration",
    "ended_room_gone",
    "agents_redispatched",
    "failed_no_agent",
    "rooms_deleted",
    "errors",
]


@dataclass
class ReaperCounts:
    expired: int = 0
    ended_over_duration: int = 0
    ended_room_gone: int = 0
    agents_redispatched: int = 0
    failed_no_agent: int = 0
    rooms_deleted: int = 0
    errors: int = 0
    livekit_reachable: bool = True
    out_of_time: bool = False

    def bump(self, counter: Counter) -> None:
        setattr(self, counter, getattr(self, counter) + 1)

    def metrics(self) -> dict[str, int]:
        return {
            "ReaperExpired": self.expired,
            "ReaperEndedOverDuration": self.ended_over_duration,
            "ReaperEndedRoomGone": self.ended_room_gone,
            "ReaperAgentsRedispatched": self.agents_redispatched,
            "SessionsFailed": self.failed_no_agent,
            "ReaperRoomsDeleted": self.rooms_deleted,
            "ReaperErrors": self.errors,
        }


@dataclass
class Sweep:
    """What one run knows: its start time and, once asked, the rooms LiveKit has."""

    sessions: SessionService
    now: datetime
    live_rooms: set[str] | None = None
    rooms_read: bool = False


# An action returns the ReaperCounts field to bump, or None when nothing changed.
Action = Callable[[Sweep, SessionRecord], Awaitable[Counter | None]]


@dataclass(frozen=True)
class Rule:
    backlog: Backlog  # which sessions it reads
    due_only: bool  # only sessions whose deadline is before the run's start
    needs_rooms: bool  # skipped when LiveKit's room list cannot be read
    act: Action


async def _expire_unjoined(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    done = await sweep.sessions.finish(rec, SessionStatus.EXPIRED, "never_joined", delete_room=True)
    return "expired" if done else None


async def _end_over_duration(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    done = await sweep.sessions.finish(rec, SessionStatus.ENDED, "max_duration", delete_room=True)
    return "ended_over_duration" if done else None


async def _end_room_gone(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    joined = rec.joined_at or rec.created_at
    if rec.room_name in (sweep.live_rooms or ()) or joined > sweep.now - ROOM_GONE_GRACE:
        return None
    done = await sweep.sessions.finish(rec, SessionStatus.ENDED, "room_gone", delete_room=False)
    return "ended_room_gone" if done else None


async def _recover_missing_agent(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    missing_since = rec.agent_left_at or (None if rec.agent_joined_at else rec.joined_at)
    if missing_since is None or missing_since > sweep.now - AGENT_JOIN_GRACE:
        return None
    reason = "agent_lost" if rec.agent_left_at else "agent_never_joined"
    action = await sweep.sessions.recover_agent(rec, sweep.now, reason)
    if action == "redispatched":
        return "agents_redispatched"
    return "failed_no_agent" if action == "failed" else None


async def _retry_room_delete(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    return "rooms_deleted" if await sweep.sessions.retry_room_delete(rec) else "errors"


RULES = (
    Rule(Backlog.PENDING, due_only=True, needs_rooms=False, act=_expire_unjoined),
    Rule(Backlog.ACTIVE, due_only=True, needs_rooms=False, act=_end_over_duration),
    Rule(Backlog.ACTIVE, due_only=False, needs_rooms=True, act=_end_room_gone),
    Rule(Backlog.ACTIVE, due_only=False, needs_rooms=True, act=_recover_missing_agent),
    Rule(Backlog.ROOM_DELETE, due_only=False, needs_rooms=True, act=_retry_room_delete),
)


class Reaper:
    def __init__(
        self, sessions: SessionService, clock: Clock, batch: int = 100, budget_seconds: float = 20.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._batch = batch
        self._budget = budget_seconds

    async def run(self) -> ReaperCounts:
        """Applies each rule in turn to at most `batch` sessions; stops when the budget is spent."""
        counts = ReaperCounts()
        deadline = time.monotonic() + self._budget
        sweep = Sweep(self._sessions, self._clock())
        for rule in RULES:
            if rule.needs_rooms and not await self._rooms_listed(sweep, counts):
                continue
            before = sweep.now if rule.due_only else None
            for rec in self._sessions.backlog(rule.backlog, before, self._batch):
                counts.out_of_time = time.monotonic() >= deadline
                if counts.out_of_time:
                    return counts
                counter = await rule.act(sweep, rec)
                if counter:
                    counts.bump(counter)
        logger.info("reaper run", extra={"counts": counts.metrics()})
        return counts

    async def _rooms_listed(self, sweep: Sweep, counts: ReaperCounts) -> bool:
        """Reads LiveKit's rooms once per run; False when LiveKit cannot be reached."""
        if not sweep.rooms_read:
            sweep.rooms_read = True
            sweep.live_rooms = await self._sessions.live_room_names()
            counts.livekit_reachable = sweep.live_rooms is not None
        return sweep.live_rooms is not None
