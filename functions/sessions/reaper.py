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

# Join times come from LiveKit's clock (webhooks, participant lists), run times from ours: a room
# is expected in a list read this long after its session was joined. It is not a grace period;
# a hang-up whose webhooks were lost is final at the first run after LiveKit closed the room.
CLOCK_SKEW = timedelta(seconds=10)
# An agent joins within a second or two of the caller; one still missing after this never will
# (LiveKit drops a dispatch that finds no registered worker and does not retry it).
AGENT_JOIN_GRACE = timedelta(seconds=30)


Counter = Literal[
    "activated",
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
    activated: int = 0
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
            "ReaperActivated": self.activated,
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
    live_rooms: dict[str, int] | None = None  # room name -> participants in it
    rooms_read: bool = False

    async def rooms(self) -> dict[str, int] | None:
        """The rooms LiveKit has, read once per run; None when LiveKit cannot be reached."""
        if not self.rooms_read:
            self.rooms_read = True
            self.live_rooms = await self.sessions.live_rooms()
        return self.live_rooms


# An action returns the ReaperCounts field to bump, or None when nothing changed.
Action = Callable[[Sweep, SessionRecord], Awaitable[Counter | None]]


@dataclass(frozen=True)
class Rule:
    backlog: Backlog  # which sessions it reads
    due_only: bool  # only sessions whose deadline is before the run's start
    needs_rooms: bool  # skipped when LiveKit's room list cannot be read
    act: Action


async def _settle_unjoined(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    """Past its join window: a session whose caller LiveKit lists in its room is active (its join
    webhook was lost); one with nobody there expires. A call is never cut on a guess: while
    LiveKit cannot be read, it expires only once even a caller who joined at the last moment
    would be past the session's maximum duration."""
    join_by = rec.join_by or rec.token_expires_at
    rooms = await sweep.rooms()
    if rooms is None:
        if join_by + timedelta(seconds=rec.max_session_duration) > sweep.now:
            return None
    elif rec.room_name in rooms:
        people = await sweep.sessions.participants(rec)
        if people is None:
            return None
        joins = [p.joined_at or sweep.now for p in people if p.is_caller]
        if joins and min(joins) <= join_by:
            done = await sweep.sessions.activate(rec, min(joins))
            return "activated" if done else None
    done = await sweep.sessions.finish(rec, SessionStatus.EXPIRED, "never_joined", delete_room=True)
    return "expired" if done else None


async def _end_over_duration(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    done = await sweep.sessions.finish(rec, SessionStatus.ENDED, "max_duration", delete_room=True)
    return "ended_over_duration" if done else None


async def _end_room_gone(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    """The caller hung up and the end-of-call webhooks were lost: the room is gone, or empty
    while LiveKit waits out its departure timeout."""
    joined = rec.joined_at or rec.created_at
    occupied = (sweep.live_rooms or {}).get(rec.room_name)
    if occupied or joined > sweep.now - CLOCK_SKEW:
        return None
    if occupied == 0:
        # Listed with nobody: LiveKit updates that count every few seconds, so ask who is there.
        people = await sweep.sessions.participants(rec)
        if people is None or any(p.is_caller for p in people):
            return None
    done = await sweep.sessions.finish(rec, SessionStatus.ENDED, "room_gone", delete_room=False)
    return "ended_room_gone" if done else None


async def _recover_missing_agent(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    missing_since = rec.agent_left_at or (None if rec.agent_joined_at else rec.joined_at)
    if missing_since is None or missing_since > sweep.now - AGENT_JOIN_GRACE:
        return None
    reason = "agent_lost" if rec.agent_left_at else "agent_never_joined"
    if not rec.agent_left_at:
        # Its join webhook may be what was lost: an agent in the room is never sent a second.
        people = await sweep.sessions.participants(rec)
        if people is None:
            return None
        agents = [p for p in people if p.is_agent]
        if agents:
            await sweep.sessions.agent_found(rec, agents[0].joined_at or sweep.now)
            return None
    action = await sweep.sessions.recover_agent(rec, sweep.now, reason)
    if action == "redispatched":
        return "agents_redispatched"
    return "failed_no_agent" if action == "failed" else None


async def _retry_room_delete(sweep: Sweep, rec: SessionRecord) -> Counter | None:
    return "rooms_deleted" if await sweep.sessions.retry_room_delete(rec) else "errors"


RULES = (
    # Reads the rooms itself: it still acts, more cautiously, when LiveKit cannot be reached.
    Rule(Backlog.PENDING, due_only=True, needs_rooms=False, act=_settle_unjoined),
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
        counts.livekit_reachable = await sweep.rooms() is not None
        return counts.livekit_reachable
