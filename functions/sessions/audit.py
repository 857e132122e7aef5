"""The invariant check: counters match live sessions, live sessions have rooms, rooms have sessions.

It repairs only what is safe to repair without knowing more: a counter that still holds the value
it was compared with, and a room whose session is over. Everything else is reported.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from functions.domain.audit import AuditReport, Finding, FindingKind, LimitCounter
from functions.domain.models import CounterRef, LimitKind, SessionRecord, SessionStatus
from functions.sessions.ports import AuditStorage, Rooms, SessionStorage
from functions.sessions.reaper import CLOCK_SKEW
from functions.sessions.service import Clock, SessionService
from functions.sessions.translate import translated
from functions.store.errors import StoreUnavailable
from voice.rooms import session_id_from_room

# A counter a create touched this recently may be ahead of a by-state index that lags behind it.
COUNTER_SETTLE = timedelta(seconds=30)


def join_deadline(rec: SessionRecord) -> datetime:
    """When a pending session should have a room at the latest: its join window's end."""
    return rec.join_by or rec.token_expires_at


def room_deadline(rec: SessionRecord) -> datetime:
    if rec.status is SessionStatus.PENDING:
        return join_deadline(rec)
    return (rec.joined_at or rec.created_at) + CLOCK_SKEW


class Auditor:
    def __init__(
        self,
        audit: AuditStorage,
        store: SessionStorage,
        rooms: Rooms,
        sessions: SessionService,
        clock: Clock,
    ) -> None:
        self._audit = audit
        self._store = store
        self._rooms = rooms
        self._sessions = sessions
        self._clock = clock

    @translated
    async def run(self, *, repair: bool) -> AuditReport:
        now = self._clock()
        # Rooms first: a session created after this read cannot look like it lost its room.
        rooms = await self._sessions.live_rooms()
        counters = {c.ref: c for c in self._audit.counters()}
        live = list(self._audit.live_sessions())
        findings = self._check_counters(counters, live, now, repair)
        if rooms is not None:
            findings += [
                Finding(
                    kind=FindingKind.LIVE_WITHOUT_ROOM,
                    subject=rec.session_id,
                    detail=f"{rec.status.value} since {rec.created_at.isoformat()} and LiveKit "
                    f"has no room {rec.room_name}",
                )
                for rec in live
                if rec.room_name not in rooms and room_deadline(rec) < now
            ]
            findings += [await self._check_room(name, now, repair) for name in sorted(rooms)]
        return AuditReport(
            checked_at=now,
            users=sum(ref.kind is LimitKind.USER for ref in counters),
            live_sessions=len(live),
            rooms=None if rooms is None else len(rooms),
            findings=[f for f in findings if f is not None],
        )

    def _check_counters(
        self,
        counters: dict[CounterRef, LimitCounter],
        live: list[SessionRecord],
        now: datetime,
        repair: bool,
    ) -> list[Finding | None]:
        held: dict[CounterRef, int] = defaultdict(int)
        for rec in live:
            for ref in rec.counters:
                held[ref] += 1
        out: list[Finding | None] = []
        for ref in sorted(set(counters) | set(held), key=lambda r: (r.kind, r.owner)):
            seen = counters[ref].live if ref in counters else 0
            if seen != held[ref]:
                out.append(self._recheck_counter(ref, now, repair))
        return out

    def _recheck_counter(self, ref: CounterRef, now: datetime, repair: bool) -> Finding | None:
        """Reads the counter and its sessions again, consistently, before calling it a fault."""
        counter = self._audit.counter(ref)
        seen = counter.live if counter else 0
        actual = sum(
            1
            for rec in self._audit.live_sessions()
            if ref in rec.counters
            and (fresh := self._store.get(rec.session_id, now)) is not None
            and fresh.status.is_live
        )
        if self._audit.counter(ref) != counter or seen == actual:
            return None  # it moved while we looked, or the index had lagged: not a fault
        settled = (
            counter is None
            or counter.updated_at is None
            or (counter.updated_at < now - COUNTER_SETTLE)
        )
        repaired = (
            repair
            and counter is not None
            and (actual > seen or settled)
            and self._audit.set_counter(ref, seen, actual, now)
        )
        whose = (
            "the user" if ref.kind is LimitKind.USER else f"the {ref.kind.value.replace('_', ' ')}"
        )
        return Finding(
            kind=FindingKind.COUNTER_MISMATCH,
            subject=ref.subject,
            detail=f"counter says {seen} live, {whose} has {actual} live session(s)"
            + (f"; set to {actual}" if repaired else ""),
            repaired=repaired,
        )

    async def _check_room(self, name: str, now: datetime, repair: bool) -> Finding | None:
        session_id = session_id_from_room(name)
        rec = self._store.get(session_id, now) if session_id else None
        if rec is not None and rec.status.is_live:
            return None
        if rec is None:
            # Not a room this control plane named, or its record is gone: report, never delete.
            return Finding(
                kind=FindingKind.ROOM_WITHOUT_SESSION,
                subject=name,
                detail="LiveKit has this room and no session names it",
            )
        repaired = False
        if repair:
            try:
                await self._rooms.delete_room(name)
                repaired = True
            except StoreUnavailable:
                repaired = False
        return Finding(
            kind=FindingKind.ROOM_WITHOUT_SESSION,
            subject=name,
            detail=f"session {rec.session_id} is {rec.status.value} but its room is open"
            + ("; room deleted" if repaired else ""),
            repaired=repaired,
        )
