"""Phone calls as sessions: inbound calls admitted from their webhook, outbound calls placed and followed."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.agents.traffic import sticky_key
from functions.domain.agents import ChosenVersion
from functions.domain.errors import (
    CallNotPlaced,
    ConfigUnavailable,
    InvalidRequest,
)
from functions.domain.events import EventOutcome, RoomEvent
from functions.domain.models import DialRequest, IdempotencyClaim, SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions import new_session as steps
from functions.sessions.idempotency import KeyedCreate, create_claimed, replayed
from functions.sessions.new_session import NewSession
from functions.sessions.ports import PhoneCalls, Rooms, SessionStorage
from functions.sessions.service import Clock, SessionService
from functions.sessions.translate import translated
from functions.store.errors import (
    Conflict,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
)
from functions.tracing import traced_dispatch
from voice.config.schema import AgentType, RealtimeSettings
from voice.config.telephony import E164, InboundNumber, TelephonySettings
from voice.metadata import DispatchMetadata, PhoneLeg
from voice.rooms import PHONE_ROOM_PREFIX, session_id_from_room

# `sip:user@host:port`, accepted where SIP URIs are allowed (the local stack and its tests).
_SIP_URI = re.compile(r"^sip:[A-Za-z0-9+._-]{1,64}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
# LiveKit's reason for a phone that left before answering, as our end_reason. LiveKit folds
# 486 Busy and 603 Decline into USER_REJECTED, so a busy line is reported as `rejected`.
FAILURE_REASONS = {"USER_REJECTED": "rejected", "USER_UNAVAILABLE": "no_answer"}
# Attributes LiveKit's SIP service puts on the phone's participant.
ATTR_TRUNK_NUMBER = "sip.trunkPhoneNumber"
ATTR_CALLER_NUMBER = "sip.phoneNumber"
# How long past its ring timeout an unanswered call may stay `dialing` if its webhooks are lost.
_DIAL_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class NewCall:
    to: str
    agent_type: AgentType | None = None
    instructions: str | None = None
    greeting: str | None = None
    variables: dict[str, str] | None = None
    language: str | None = None
    voice_profile: str | None = None
    agent_id: str | None = None
    agent_version: int | None = None
    end_user_id: str | None = None
    metadata: dict[str, Any] | None = None


def callee_identity(session_id: str) -> str:
    return f"phone-{session_id[:8]}"


def failure_reason(disconnect_reason: str) -> str:
    return FAILURE_REASONS.get(disconnect_reason, "sip_error")


def require_telephony(realtime: RealtimeSettings) -> TelephonySettings:
    if not realtime.telephony.enabled:
        raise ConfigUnavailable(
            "phone calls are off in the config (voice.realtime.telephony.enabled = false)"
        )
    return realtime.telephony


def inbound_dispatch(realtime: RealtimeSettings, route: InboundNumber) -> DispatchMetadata:
    """What the agent is told on every call to `route.number`; the room supplies the session id."""
    return DispatchMetadata(
        session_id="",
        agent_type=route.agent_type or realtime.agent.type,
        initial_greeting=True,
        voice_profile=route.voice_profile,
        instructions=route.instructions,
        greeting=route.greeting,
        phone=PhoneLeg(direction="inbound", number=route.number),
        # The version is chosen per caller when the call's session is written (the worker reads
        # it from there): a dispatch rule's metadata is the same for every call.
        agent_id=route.agent_id,
    )


@dataclass(frozen=True)
class PhoneService:
    """Outbound calls, and the webhook events that only phone calls have."""

    sessions: SessionService
    store: SessionStorage
    rooms: Rooms
    phone: PhoneCalls
    clock: Clock
    # SIP URIs name their own host: dialling them is for the local stack, never a deployment.
    allow_sip_uris: bool = False

    # -- outbound -----------------------------------------------------------------------------

    @translated
    async def call(
        self,
        user_id: str,
        req: NewCall,
        idempotency_key: str | None = None,
        account_id: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Places an outbound call as a new session (limits apply); it starts `dialing`.

        Returns the session and whether it is a replay: a retried call with the same
        `Idempotency-Key` and body gets the session the first one made, and dials no one again.
        """
        keyed = None if idempotency_key is None else KeyedCreate.of(user_id, idempotency_key, req)
        if keyed is not None:
            held = self.store.get_claim(user_id, keyed.key_hash, self.clock())
            if held is not None:
                return self._replay(keyed, held), True
        loaded = self.sessions.loaded_config()
        # The callee's number keeps them on one version of the agent, unless an end user is named.
        chosen = self.sessions.choose_agent(
            user_id, req.agent_id, req.agent_version, sticky_key(req.end_user_id, req.to, user_id)
        )
        voice = steps.voice_for(loaded.config, chosen)
        realtime = steps.require_enabled(voice)
        telephony = require_telephony(realtime)
        caller_id = self._caller_id(telephony, req.to)
        # The same checks and choices as a web session's: one path for per-call overrides.
        choices = NewSession(
            voice_profile=req.voice_profile,
            metadata=req.metadata,
            instructions=req.instructions,
            greeting=req.greeting,
            variables=req.variables,
            language=req.language,
        )
        metadata = steps.checked_metadata(choices, voice)
        overrides = steps.checked_overrides(choices, realtime)
        session_id = str(uuid.uuid4())
        dispatch = traced_dispatch(
            DispatchMetadata(
                session_id=session_id,
                agent_type=req.agent_type or realtime.agent.type,
                initial_greeting=True,
                voice_profile=req.voice_profile,
                metadata=metadata,
                phone=PhoneLeg(direction="outbound", number=caller_id, remote=req.to),
                agent_id=None if chosen is None else chosen.agent_id,
                agent_version=None if chosen is None else chosen.version,
                **overrides.model_dump(),
            )
        )
        now = self.clock()
        rec = steps.pending_record(
            user_id, dispatch, loaded, now, req.end_user_id, account_id
        ).model_copy(
            update={
                "phone": dispatch.phone,
                # Unanswered and unheard of past this, the reaper expires it (lost webhooks).
                "token_expires_at": now
                + timedelta(seconds=telephony.ring_timeout_seconds)
                + _DIAL_GRACE,
            }
        )
        # A call takes a worker's job slot as a web session does: no free slot, no dialling.
        self.sessions.admit(realtime, now)
        # A call has no join token: its claim keeps the session id alone.
        held = create_claimed(
            self.store,
            rec,
            realtime.limits.max_sessions_per_user,
            keyed,
            max_account=realtime.limits.max_sessions_per_account,
        )
        if keyed is not None and held is not None:
            return self._replay(keyed, held), True
        dial = DialRequest(
            room_name=rec.room_name,
            to=req.to,
            caller_id=caller_id,
            identity=callee_identity(session_id),
            agent_name=realtime.worker.agent_name,
            dispatch_metadata=dispatch.to_json(),
            empty_timeout=realtime.livekit.room_empty_timeout,
            ring_timeout=telephony.ring_timeout_seconds,
        )
        log = {"session_id": session_id, "room": rec.room_name}
        try:
            await self.phone.dial(dial)
        except StoreError as exc:
            await self.sessions.finish(rec, SessionStatus.FAILED, "sip_error", delete_room=True)
            logger.error("outbound call not placed", extra=log | {"why": str(exc)})
            raise CallNotPlaced(
                f"the call was not placed ({exc}); session {session_id} ended failed"
            ) from exc
        logger.info("outbound call dialing", extra=log)
        return rec, False

    def _replay(self, keyed: KeyedCreate, held: IdempotencyClaim) -> SessionRecord:
        rec = replayed(self.store, keyed, held, self.clock())
        logger.info("outbound call replayed", extra={"session_id": rec.session_id})
        return rec

    def _caller_id(self, telephony: TelephonySettings, to: str) -> str:
        if re.fullmatch(E164, to):
            if telephony.outbound is None:
                raise ConfigUnavailable(
                    "no outbound trunk in the config: set voice.realtime.telephony.outbound "
                    "{address, number} and run `python -m functions.telephony sync`"
                )
            return telephony.outbound.number
        if self.allow_sip_uris and _SIP_URI.fullmatch(to):
            if telephony.outbound is not None:
                return telephony.outbound.number
            if telephony.inbound:
                return telephony.inbound[0].number
            raise ConfigUnavailable("no number to call from: configure telephony.outbound")
        raise InvalidRequest(
            "to: give a phone number in E.164 form, e.g. +15550123"
            + (", or a SIP URI sip:user@host:port" if self.allow_sip_uris else "")
        )

    # -- webhook events -----------------------------------------------------------------------

    async def on_event(self, ev: RoomEvent, rec: SessionRecord | None) -> EventOutcome | None:
        """Applies an event only a phone call has; None leaves it to the general state machine."""
        if rec is None:
            inbound = ev.room_name.startswith(PHONE_ROOM_PREFIX)
            if inbound and ev.event == "participant_joined" and ev.participant_is_sip:
                return await self._admit(ev)
            return None
        if rec.phone is None or rec.phone.direction != "outbound":
            return None
        if rec.status is SessionStatus.PENDING:
            return await self._dialing(rec, ev)
        return None

    async def _admit(self, ev: RoomEvent) -> EventOutcome:
        """A call to one of our numbers becomes a session owned by the number's user."""

        number = ev.participant_attributes.get(ATTR_TRUNK_NUMBER, "")
        caller = ev.participant_attributes.get(ATTR_CALLER_NUMBER, "")
        session_id = session_id_from_room(ev.room_name)
        assert session_id is not None  # every phone room names one
        loaded = self.sessions.loaded_config()
        realtime = loaded.config.voice.realtime
        route = realtime.telephony.route_for(number) if realtime.telephony.enabled else None
        log = {"session_id": session_id, "room": ev.room_name, "number": number}
        if route is None:
            # A trunk the last sync did not remove (or telephony turned off): hang up.
            await self._hang_up(ev.room_name)
            logger.warning("call to a number not in the config: hung up", extra=log)
            return EventOutcome(None, "refused: unknown number")
        at = ev.created_at or self.clock()
        chosen = self._inbound_agent(route, caller, log)
        dispatch = inbound_dispatch(realtime, route).model_copy(
            update={
                "session_id": session_id,
                "agent_id": None if chosen is None else chosen.agent_id,
                "agent_version": None if chosen is None else chosen.version,
            }
        )
        leg = PhoneLeg(direction="inbound", number=number, remote=caller)
        rec = steps.pending_record(route.user, dispatch, loaded, at).model_copy(
            update={"room_name": ev.room_name, "phone": leg}
        )
        try:
            # The number's user is its own account: numbers are configured per user.
            self.store.create(
                rec,
                realtime.limits.max_sessions_per_user,
                max_account=realtime.limits.max_sessions_per_account,
            )
        except Conflict:
            return EventOutcome(session_id, "unchanged")  # a replayed webhook
        except LimitExceeded:
            # The call was answered before we heard of it, so SIP busy is too late: drop it.
            refused = rec.model_copy(
                update={"status": SessionStatus.FAILED, "ended_at": at, "end_reason": "over_limit"}
            )
            self.store.put_ended(refused)
            await self._hang_up(ev.room_name)
            logger.warning("call over the owner's session limit: dropped", extra=log)
            return EventOutcome(session_id, "refused: over limit")
        expires = at + timedelta(seconds=rec.max_session_duration)
        changed = self.store.mark_active(session_id, at, expires)
        await self._note_agent(session_id, ev.room_name, at)
        logger.info("inbound call answered", extra=log | {"user": route.user})
        return EventOutcome(session_id, "activated" if changed else "unchanged")

    def _inbound_agent(
        self, route: InboundNumber, caller: str, log: dict[str, Any]
    ) -> ChosenVersion | None:
        """The version the number's agent gives this caller; None (the config file's agent)
        when the number names no agent or one its owner does not have."""
        if route.agent_id is None:
            return None
        try:
            return self.sessions.choose_agent(
                route.user, route.agent_id, None, sticky_key(None, caller, route.user)
            )
        except InvalidRequest as exc:
            logger.error(
                "inbound number names an agent that cannot serve: the config agent answers",
                extra=log | {"why": exc.message},
            )
            return None

    async def _dialing(self, rec: SessionRecord, ev: RoomEvent) -> EventOutcome | None:
        """An outbound call not yet answered: it fails if the phone leaves, goes active on answer."""

        if ev.participant_is_agent and ev.event in ("participant_joined", "participant_left"):
            return None  # the agent's comings and goings are the general machine's
        if ev.event == "room_finished":
            return None
        log = {"session_id": rec.session_id, "room": rec.room_name, "event": ev.event}
        if ev.event == "participant_left" and ev.participant_is_sip:
            reason = failure_reason(ev.disconnect_reason)
            changed = await self.sessions.finish(
                rec, SessionStatus.FAILED, reason, delete_room=True
            )
            logger.info("outbound call not answered", extra=log | {"reason": reason})
            return EventOutcome(rec.session_id, "call_failed" if changed else "unchanged")
        # Joins and tracks come while it rings too: only LiveKit's call status says "answered".
        # The agent publishes its audio once the callee answers, so some event always follows.
        try:
            status = await self.phone.call_status(rec.room_name)
        except StoreUnavailable:
            status = None  # the next event (or the reaper) looks again
        if status != "active":
            return EventOutcome(rec.session_id, "dialing")
        at = ev.created_at or self.clock()
        changed = self.store.mark_active(
            rec.session_id, at, at + timedelta(seconds=rec.max_session_duration)
        )
        logger.info("outbound call answered", extra=log)
        return EventOutcome(rec.session_id, "answered" if changed else "unchanged")

    async def _hang_up(self, room_name: str) -> None:
        """Deleting the room ends the phone's participant, and LiveKit hangs up the call."""
        try:
            await self.rooms.delete_room(room_name)
        except StoreUnavailable as exc:
            # The room's empty timeout closes it later; the call gets no agent meanwhile.
            logger.warning(
                "could not hang up a refused call", extra={"room": room_name, "why": str(exc)}
            )

    async def _note_agent(self, session_id: str, room_name: str, at: datetime) -> None:
        """The rule dispatched the agent with the room, so its join may have come before ours."""
        try:
            people = await self.rooms.list_participants(room_name)
        except StoreUnavailable:
            return
        if any(p.is_agent for p in people):
            self.store.mark_agent_joined(session_id, at)
