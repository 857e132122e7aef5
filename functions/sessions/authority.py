"""Only live sessions get an agent: the room of a session that is not live is closed on sight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.domain.events import RoomEvent
from functions.domain.models import SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions.ports import Rooms, SessionStorage
from functions.sessions.service import SessionService
from functions.store.errors import StoreUnavailable

# A caller's token recreates its room (and dispatches the agent) whenever it is used: these are
# the events by which such a room shows itself.
JOIN_EVENTS = frozenset({"room_started", "participant_joined"})


@dataclass(frozen=True)
class RoomGuard:
    """Closes rooms that a session's token reopened after the session stopped being live."""

    sessions: SessionService
    store: SessionStorage
    rooms: Rooms

    async def close_if_not_live(
        self, ev: RoomEvent, session_id: str, rec: SessionRecord | None, at: datetime
    ) -> str | None:
        """None when the room may go on; otherwise closes it and says how."""
        if ev.event not in JOIN_EVENTS:
            return None
        known = rec is not None and rec.room_name == ev.room_name
        if known and rec is not None and rec.gate.admits_agent(at):
            return None
        log = {"session_id": session_id, "room": ev.room_name, "event": ev.event}
        if known and rec is not None and rec.status.is_live:
            # Pending past its join window: the join is too late, the session expires now.
            await self.sessions.finish(rec, SessionStatus.EXPIRED, "never_joined", delete_room=True)
            logger.warning("join after the join window: session expired, room closed", extra=log)
            return "expired"
        if not await self._delete(ev.room_name, log):
            if known and rec is not None:
                self.store.mark_room_delete_pending(rec.session_id, at)
            return "close_deferred"
        status = rec.status.value if known and rec is not None else "unknown"
        logger.warning("room of a session that is not live: closed", extra=log | {"status": status})
        return "closed"

    async def _delete(self, room_name: str, log: dict[str, str]) -> bool:
        try:
            await self.rooms.delete_room(room_name)
        except StoreUnavailable as exc:
            logger.error("room of a dead session not closed", extra=log | {"why": str(exc)})
            return False
        return True
