"""Session rules: create with limits and a dispatching token, read, list, end; health figures."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.agents.traffic import sticky_key
from functions.domain.agents import ChosenVersion
from functions.domain.errors import ConfigUnavailable, InvalidRequest, NotFound
from functions.domain.events import Participant
from functions.domain.models import (
    Backlog,
    IdempotencyClaim,
    SessionEnd,
    SessionRecord,
    SessionStatus,
)
from functions.observability import logger
from functions.sessions import new_session as steps
from functions.sessions.admission import Admission
from functions.sessions.idempotency import KeyedCreate, create_claimed, replayed
from functions.sessions.new_session import NewSession
from functions.sessions.ports import AgentVersions, JoinTokens, Reports, Rooms, SessionStorage
from functions.sessions.translate import translated
from functions.store.errors import StoreUnavailable
from functions.tracing import traced_dispatch
from voice.config import ConfigError, LoadedConfig
from voice.config.schema import RealtimeSettings

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CreatedSession:
    record: SessionRecord
    token: str
    url: str
    # True when an `Idempotency-Key` returned the session an earlier create made.
    replayed: bool = False


@dataclass(frozen=True)
class Health:
    livekit_connected: bool
    livekit_url: str
    active_rooms: int | None
    active_sessions: int | None
    store_ok: bool

    @property
    def status(self) -> str:
        return "healthy" if self.livekit_connected and self.store_ok else "degraded"


class SessionService:
    def __init__(
        self,
        store: SessionStorage,
        rooms: Rooms,
        tokens: JoinTokens,
        config: Callable[[], LoadedConfig],
        clock: Clock = utcnow,
        reports: Reports | None = None,
        admission: Admission | None = None,
        on_finished: Callable[[str], None] | None = None,
        agents: AgentVersions | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._tokens = tokens
        self._config = config
        self._clock = clock
        self._reports = reports
        self._admission = admission
        # Told the id of each session this process moved to a terminal state (customer webhooks).
        self._on_finished = on_finished
        self._agents = agents

    def loaded_config(self) -> LoadedConfig:
        try:
            return self._config()
        except ConfigError as exc:
            raise ConfigUnavailable(f"the voice config is invalid: {exc}") from exc

    # -- create -------------------------------------------------------------------------------

    @translated
    def create(
        self,
        user_id: str,
        req: NewSession,
        idempotency_key: str | None = None,
        account_id: str | None = None,
    ) -> CreatedSession:
        """A new session for the key's user, within its own (or its end user's) limit and its
        account's (`account_id`; none: the user is its own account)."""
        keyed = None if idempotency_key is None else KeyedCreate.of(user_id, idempotency_key, req)
        if keyed is not None:
            held = self._store.get_claim(user_id, keyed.key_hash, self._clock())
            if held is not None:
                return self._replay(keyed, held)
        loaded = self.loaded_config()
        chosen = self.choose_agent(
            user_id, req.agent_id, req.agent_version, sticky_key(req.end_user_id, None, user_id)
        )
        voice = steps.voice_for(loaded.config, chosen)
        realtime = steps.require_enabled(voice)
        metadata = steps.checked_metadata(req, voice)
        overrides = steps.checked_overrides(req, realtime)
        dispatch = traced_dispatch(
            steps.dispatch_for(str(uuid.uuid4()), req, realtime, metadata, overrides, chosen)
        )
        record = steps.pending_record(
            user_id,
            dispatch,
            loaded,
            self._clock(),
            end_user_id=req.end_user_id,
            account_id=account_id,
        )
        self.admit(realtime, record.created_at)
        token = self._tokens.mint(steps.join_token_request(record, dispatch, realtime))
        held = create_claimed(
            self._store,
            record,
            realtime.limits.max_sessions_per_user,
            keyed,
            token=token,
            url=self._tokens.url,
            max_account=realtime.limits.max_sessions_per_account,
        )
        if keyed is not None and held is not None:
            return self._replay(keyed, held)
        logger.info(
            "session created",
            extra={
                "session_id": record.session_id,
                "room": record.room_name,
                "agent_type": record.agent_type,
                "agent_id": record.agent_id,
                "agent_version": record.agent_version,
            },
        )
        return CreatedSession(record=record, token=token, url=self._tokens.url)

    def admit(self, realtime: RealtimeSettings, at: datetime) -> None:
        """Fleet admission for a new session or call: 503 when no worker has a free slot."""
        if self._admission is not None:
            self._admission.admit(realtime.admission, at, realtime.worker.agent_name)

    def choose_agent(
        self, user_id: str, agent_id: str | None, version: int | None, sticky: str
    ) -> ChosenVersion | None:
        """The agent version a new session runs; None (no agent named) is the config's agent."""
        if agent_id is None:
            if version is not None:
                raise InvalidRequest("agent_version: name the agent too (agent_id)")
            return None
        if self._agents is None:
            raise ConfigUnavailable("agents are not available in this deployment")
        return self._agents.choose(user_id, agent_id, version, sticky)

    def _replay(self, keyed: KeyedCreate, held: IdempotencyClaim) -> CreatedSession:
        """The session an earlier create with the same key and body made, as it is now."""
        rec = replayed(self._store, keyed, held, self._clock())
        logger.info(
            "session create replayed", extra={"session_id": rec.session_id, "room": rec.room_name}
        )
        return CreatedSession(record=rec, token=held.token, url=held.url, replayed=True)

    # -- read ---------------------------------------------------------------------------------

    @translated
    def get(self, user_id: str, session_id: str) -> SessionRecord:
        rec = self._store.get(session_id, self._clock()) if _looks_like_id(session_id) else None
        # Another user's session is reported exactly like a missing one.
        if rec is None or rec.user_id != user_id:
            raise NotFound(f"no session '{session_id}' for this API key")
        return rec

    def report_usage(self, rec: SessionRecord) -> dict[str, Any] | None:
        """Usage from the worker's report; only ended sessions have one."""
        if rec.status.is_live or self._reports is None:
            return None
        return self._reports.usage(rec.session_id)

    @translated
    def list(
        self, user_id: str, limit: int, cursor: str | None
    ) -> tuple[list[SessionRecord], str | None]:
        return self._store.list_for_user(user_id, limit, cursor, self._clock())

    # -- end ----------------------------------------------------------------------------------

    @translated
    async def end(self, user_id: str, session_id: str) -> tuple[SessionRecord, bool]:
        """Ends the caller's session; repeatable, and it gives back its place in the user's limit exactly once.

        Returns the session as stored afterwards, and whether this call was the one that ended it.
        """
        rec = self.get(user_id, session_id)
        ended = False
        if rec.status.is_live:
            ended = await self.finish(rec, SessionStatus.ENDED, "ended_by_api", delete_room=True)
        elif rec.room_delete_pending:
            await self.retry_room_delete(rec)
        return self.get(user_id, session_id), ended

    @translated
    async def finish(
        self, rec: SessionRecord, status: SessionStatus, reason: str, *, delete_room: bool
    ) -> bool:
        """Moves a live session to a terminal state; the room is deleted or queued for retry."""
        pending_delete = delete_room and not await self._delete_room(rec)
        end = SessionEnd(
            status=status, at=self._clock(), reason=reason, room_delete_pending=pending_delete
        )
        changed = self._store.finish(rec, end)
        if not changed and pending_delete:
            self._store.mark_room_delete_pending(rec.session_id, self._clock())
        if changed:
            logger.info(
                "session finished",
                extra={"session_id": rec.session_id, "status": status.value, "reason": reason},
            )
            if self._on_finished is not None:
                self._on_finished(rec.session_id)
        return changed

    async def _delete_room(self, rec: SessionRecord) -> bool:
        try:
            await self._rooms.delete_room(rec.room_name)
        except StoreUnavailable as exc:
            logger.warning(
                "room deletion deferred",
                extra={"session_id": rec.session_id, "room": rec.room_name, "why": str(exc)},
            )
            return False
        return True

    @translated
    async def recover_agent(self, rec: SessionRecord, at: datetime, reason: str) -> str:
        """A live call without its agent: re-dispatch while the budget lasts, else fail it."""
        log = {"session_id": rec.session_id, "room": rec.room_name, "reason": reason}
        # One cap for every dispatch after the first, whether the agent never came (the
        # watchdog) or was lost mid-call (here): agent_watchdog.max_dispatches.
        cap = self.loaded_config().config.realtime.agent_watchdog.max_dispatches
        if self._store.record_agent_left(rec.session_id, at, cap):
            # An agent that was there has greeted (or was mid-call): no second greeting. One that
            # never came (its dispatch found no registered worker) still owes it.
            greet = rec.initial_greeting and rec.agent_joined_at is None
            dispatch = steps.redispatch_for(rec, greet=greet)
            agent_name = self.loaded_config().config.realtime.worker.agent_name
            try:
                await self._rooms.dispatch_agent(rec.room_name, agent_name, dispatch.to_json())
                logger.warning("agent missing from a live call: re-dispatched", extra=log)
                return "redispatched"
            except StoreUnavailable as exc:
                logger.error("agent re-dispatch failed", extra=log | {"why": str(exc)})
        changed = await self.finish(rec, SessionStatus.FAILED, reason, delete_room=True)
        logger.error("agent missing and not re-dispatched: session failed", extra=log)
        return "failed" if changed else "unchanged"

    @translated
    async def activate(self, rec: SessionRecord, joined_at: datetime) -> bool:
        """pending -> active for a caller found in the room (their join webhook was lost)."""
        expires = joined_at + timedelta(seconds=rec.max_session_duration)
        changed = self._store.mark_active(rec.session_id, joined_at, expires)
        if changed:
            logger.warning(
                "caller found in the room without a join webhook: session activated",
                extra={"session_id": rec.session_id, "room": rec.room_name},
            )
        return changed

    @translated
    async def agent_found(self, rec: SessionRecord, joined_at: datetime) -> bool:
        """Records an agent found in the room whose join webhook was lost."""
        return self._store.mark_agent_joined(rec.session_id, joined_at)

    async def participants(self, rec: SessionRecord) -> list[Participant] | None:
        """Who is in the session's room now, or None when LiveKit cannot be reached."""
        try:
            return await self._rooms.list_participants(rec.room_name)
        except StoreUnavailable:
            return None

    @translated
    async def retry_room_delete(self, rec: SessionRecord) -> bool:
        try:
            await self._rooms.delete_room(rec.room_name)
        except StoreUnavailable:
            return False
        self._store.clear_room_delete(rec.session_id)
        return True

    # -- sweeps and health -------------------------------------------------------------------

    @translated
    def backlog(self, backlog: Backlog, before: datetime | None, limit: int) -> list[SessionRecord]:
        """Up to `limit` sessions the reaper should look at, optionally only those due `before`."""
        return list(self._store.backlog(backlog, before=before, limit=limit))

    async def live_rooms(self) -> dict[str, int] | None:
        """The rooms LiveKit has now and how many are in each, or None when it cannot be reached."""
        try:
            return await self._rooms.list_rooms()
        except StoreUnavailable:
            return None

    async def health(self) -> Health:
        rooms = await self.live_rooms()
        try:
            live: int | None = self._store.count_live()
        except StoreUnavailable:
            live = None
        return Health(
            livekit_connected=rooms is not None,
            livekit_url=self._tokens.url,
            active_rooms=None if rooms is None else len(rooms),
            active_sessions=live,
            store_ok=live is not None,
        )


def _looks_like_id(session_id: str) -> bool:
    try:
        return str(uuid.UUID(session_id)) == session_id
    except ValueError:
        return False
