"""The reaper: the backstop for lost webhooks. It expires, ends and cleans up, bounded per run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from functions.domain.models import SessionStatus
from functions.observability import logger
from functions.sessions.ports import Rooms, Sessions
from functions.sessions.service import Clock, SessionService
from functions.sessions.translate import translated
from functions.store.dynamo.items import CLEANUP_STATE
from functions.store.errors import StoreUnavailable

# An active session's room may not be listed yet right after the join; leave it alone this long.
ROOM_GONE_GRACE = timedelta(minutes=2)
# An agent joins within a second or two of the caller; one still missing after this never will
# (LiveKit drops a dispatch that finds no registered worker and does not retry it).
AGENT_JOIN_GRACE = timedelta(seconds=30)


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
    details: list[str] = field(default_factory=list)

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


class Reaper:
    def __init__(
        self,
        sessions: SessionService,
        store: Sessions,
        rooms: Rooms,
        clock: Clock,
        batch: int = 100,
        budget_seconds: float = 20.0,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._rooms = rooms
        self._clock = clock
        self._batch = batch
        self._budget = budget_seconds

    @translated
    async def run(self) -> ReaperCounts:
        counts = ReaperCounts()
        deadline = time.monotonic() + self._budget

        def out_of_time() -> bool:
            counts.out_of_time = time.monotonic() >= deadline
            return counts.out_of_time

        now = self._clock()
        for rec in list(self._store.by_state("STATE#pending", before=now, limit=self._batch)):
            if out_of_time():
                return counts
            if await self._sessions.finish(
                rec, SessionStatus.EXPIRED, "never_joined", delete_room=True
            ):
                counts.expired += 1

        for rec in list(self._store.by_state("STATE#active", before=now, limit=self._batch)):
            if out_of_time():
                return counts
            if await self._sessions.finish(
                rec, SessionStatus.ENDED, "max_duration", delete_room=True
            ):
                counts.ended_over_duration += 1

        try:
            live_rooms = set(await self._rooms.list_room_names())
        except StoreUnavailable:
            counts.livekit_reachable = False
            live_rooms = None
        if live_rooms is not None:
            settled = now - ROOM_GONE_GRACE
            for rec in list(self._store.by_state("STATE#active", limit=self._batch)):
                if out_of_time():
                    return counts
                joined = rec.joined_at or rec.created_at
                if rec.room_name in live_rooms or joined > settled:
                    continue
                if await self._sessions.finish(
                    rec, SessionStatus.ENDED, "room_gone", delete_room=False
                ):
                    counts.ended_room_gone += 1

            for rec in list(self._store.by_state("STATE#active", limit=self._batch)):
                if out_of_time():
                    return counts
                missing_since = rec.agent_left_at or (
                    None if rec.agent_joined_at else rec.joined_at
                )
                if missing_since is None or missing_since > now - AGENT_JOIN_GRACE:
                    continue
                reason = "agent_lost" if rec.agent_left_at else "agent_never_joined"
                action = await self._sessions.recover_agent(rec, now, reason)
                if action == "redispatched":
                    counts.agents_redispatched += 1
                elif action == "failed":
                    counts.failed_no_agent += 1

            for rec in list(self._store.by_state(CLEANUP_STATE, limit=self._batch)):
                if out_of_time():
                    return counts
                if await self._sessions.retry_room_delete(rec):
                    counts.rooms_deleted += 1
                else:
                    counts.errors += 1
        logger.info("reaper run", extra={"counts": counts.metrics()})
        return counts
