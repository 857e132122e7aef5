"""LiveKit's events (its signed webhooks) drive the session state machine; replays and reordering
are harmless. Not to be confused with customer webhooks (customer_webhooks.py), which we send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from functions.domain.events import EventOutcome, RoomEvent
from functions.domain.models import SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions.authority import RoomGuard
from functions.sessions.ports import PhoneEvents, Rooms, SessionStorage, WebhookVerifier
from functions.sessions.service import Clock, SessionService
from functions.sessions.translate import translated
from functions.sessions.watchdog import AgentWatchdog
from functions.store.errors import StoreUnavailable
from voice.metadata import END_REASON_ATTRIBUTE, VOICEMAIL
from voice.rooms import PHONE_ROOM_PREFIX, session_id_from_room

# What PhoneService.on_event answers when a call was answered (outbound) or admitted (inbound).
PHONE_ANSWERED = ("answered", "activated")


@dataclass(frozen=True)
class LiveKitEventService:
    """Applies verified LiveKit events to the sessions they name."""

    sessions: SessionService
    store: SessionStorage
    rooms: Rooms
    verifier: WebhookVerifier
    clock: Clock
    guard: RoomGuard | None = None
    watchdog: AgentWatchdog | None = None
    # Told the id of a session the caller or the agent just joined (customer webhooks).
    on_joined: Callable[[str], None] | None = None
    # Phone calls: inbound calls become sessions here, outbound ones ring before they are live.
    phone: PhoneEvents | None = None

    @translated
    async def receive(self, body: bytes, auth_header: str | None) -> EventOutcome:
        """Verifies a signed webhook against the raw body, then applies its event."""
        return await self._apply(self.verifier.verify(body, auth_header))

    async def _apply(self, ev: RoomEvent) -> EventOutcome:
        session_id = session_id_from_room(ev.room_name)
        rec = self.store.get(session_id, self.clock()) if session_id else None
        if self.phone is not None:
            handled = await self.phone.on_event(ev, rec)
            if handled is not None:
                # An answered phone call is watched as a joined caller is: a dispatch LiveKit
                # dropped (no worker free at that moment) is sent again.
                sid = handled.session_id
                if handled.action in PHONE_ANSWERED and sid is not None and self.watchdog:
                    self.watchdog.watch(sid)
                return handled
        at = ev.created_at or self.clock()
        if session_id and self.guard is not None and not unclaimed_phone_room(ev, rec):
            closed = await self.guard.close_if_not_live(ev, session_id, rec, at)
            if closed:
                return EventOutcome(session_id, closed)
        if rec is None or rec.room_name != ev.room_name:
            return EventOutcome(None, "ignored: not a session room")
        log = {"session_id": rec.session_id, "room": rec.room_name, "event": ev.event}

        if ev.event == "room_started" or (
            ev.event == "participant_joined" and not ev.participant_is_agent
        ):
            expires = at + timedelta(seconds=rec.max_session_duration)
            changed = self.store.mark_active(rec.session_id, at, expires)
            logger.info("caller joined" if changed else "no change", extra=log)
            if changed and self.watchdog is not None:
                self.watchdog.caller_joined(rec)
            if changed and self.on_joined is not None:
                self.on_joined(rec.session_id)
            return EventOutcome(rec.session_id, "activated" if changed else "unchanged")

        if ev.event == "participant_joined" and ev.participant_is_agent:
            changed = self.store.mark_agent_joined(rec.session_id, at)
            if changed and self.on_joined is not None:
                self.on_joined(rec.session_id)
            return EventOutcome(rec.session_id, "agent_joined" if changed else "unchanged")

        if ev.event == "room_finished":
            changed = await self.sessions.finish(
                rec, SessionStatus.ENDED, "room_finished", delete_room=False
            )
            return EventOutcome(rec.session_id, "ended" if changed else "unchanged")

        if ev.event == "participant_left" and not ev.participant_is_agent:
            changed = await self.sessions.finish(
                rec, SessionStatus.ENDED, caller_left_reason(ev), delete_room=True
            )
            return EventOutcome(rec.session_id, "ended" if changed else "unchanged")

        if ev.event == "participant_left" and ev.participant_is_agent:
            return await self._agent_left(rec, at, log)

        return EventOutcome(rec.session_id, "ignored")

    async def _agent_left(self, rec: SessionRecord, at: datetime, log: dict) -> EventOutcome:
        if not rec.status.is_live or at >= rec.expires_at:
            return EventOutcome(rec.session_id, "unchanged")
        try:
            participants = await self.rooms.list_participants(rec.room_name)
        except StoreUnavailable:
            participants = None
        callers = [p for p in participants or [] if not p.is_agent]
        if participants is not None and not callers:
            # The caller is gone too: the room closes and room_finished ends the session.
            return EventOutcome(rec.session_id, "unchanged")
        if any(p.is_agent for p in participants or []):
            # Another agent serves the call (one of two left it: worker/one_agent.py).
            return EventOutcome(rec.session_id, "agent_still_present")
        action = await self.sessions.recover_agent(rec, at, "agent_lost")
        return EventOutcome(rec.session_id, action)


def caller_left_reason(ev: RoomEvent) -> str:
    """Why the session ends as its caller leaves: `voicemail` when the agent hung up on an
    answering machine (it marks the phone's participant so before it removes it)."""
    if ev.participant_is_sip and ev.participant_attributes.get(END_REASON_ATTRIBUTE) == VOICEMAIL:
        return VOICEMAIL
    return "caller_left"


def unclaimed_phone_room(ev: RoomEvent, rec: SessionRecord | None) -> bool:
    """An inbound call's room before its session exists: the phone service writes the session
    when the SIP participant joins, so the room is not a dead session's (only LiveKit's dispatch
    rule makes phone rooms; no join token names one)."""
    return rec is None and ev.room_name.startswith(PHONE_ROOM_PREFIX)
