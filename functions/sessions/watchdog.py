"""The agent watchdog: a caller whose agent has not joined gets it dispatched again, then is told."""

from __future__ import annotations

import json
from dataclasses import dataclass

from functions.domain.events import AgentCheck
from functions.domain.models import SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions.new_session import redispatch_for
from functions.sessions.ports import AgentCheckQueue, Rooms, SessionStorage
from functions.sessions.service import Clock, SessionService
from functions.sessions.translate import translated
from functions.store.errors import StoreUnavailable

# The data topic on which the control plane tells the caller about its session (the playground
# listens on it).
CALLER_TOPIC = "voice.session"
NO_AGENT = "no_agent_available"
NO_AGENT_MESSAGE = "No agent is available right now. Please try again in a minute."


@dataclass(frozen=True)
class AgentWatchdog:
    """Checks a few seconds after each join that the agent came; dispatches again if not."""

    sessions: SessionService
    store: SessionStorage
    rooms: Rooms
    queue: AgentCheckQueue
    clock: Clock

    def caller_joined(self, rec: SessionRecord) -> None:
        self.watch(rec.session_id)

    def watch(self, session_id: str) -> None:
        """Schedules the first check of a session whose caller is in (or whose phone answered)."""
        self._schedule(AgentCheck(session_id=session_id, attempt=0))

    def _schedule(self, check: AgentCheck) -> None:
        settings = self.sessions.loaded_config().config.realtime.agent_watchdog
        try:
            self.queue.schedule(check, settings.delay(check.attempt))
        except StoreUnavailable as exc:
            # Not fatal: the reaper's missing-agent rule is the backstop.
            logger.error(
                "agent check not scheduled",
                extra={"session_id": check.session_id, "why": str(exc)},
            )

    @translated
    async def check(self, check: AgentCheck) -> str:
        """Runs one check; returns what it found or did."""
        rec = self.store.get(check.session_id, self.clock())
        if rec is None or not rec.status.is_live:
            return "not_live"
        if rec.agent_joined_at is not None:
            # Arrived (a loss later is the webhook's agent_left path, not this one).
            return "agent_joined"
        try:
            participants = await self.rooms.list_participants(rec.room_name)
        except StoreUnavailable:
            participants = None
        if participants is not None:
            if any(p.is_agent for p in participants):
                return "agent_joined"  # its webhook is late
            if not participants:
                return "caller_gone"  # room_finished / participant_left end the session
        settings = self.sessions.loaded_config().config.realtime.agent_watchdog
        if check.attempt >= settings.max_dispatches:
            await self._give_up(rec)
            return "failed"
        following = AgentCheck(session_id=rec.session_id, attempt=check.attempt + 1)
        if await self._on_its_way(rec):
            # A worker took the job and its process is still starting: a second dispatch would
            # bring a second agent. Look again later (the look still counts against the limit).
            self._schedule(following)
            return "agent_on_its_way"
        await self._dispatch(rec, following.attempt)
        self._schedule(following)
        return "redispatched"

    async def _on_its_way(self, rec: SessionRecord) -> bool:
        try:
            return await self.rooms.agent_on_its_way(rec.room_name)
        except StoreUnavailable:
            return False  # the dispatch below will most likely fail too, and is logged

    async def _dispatch(self, rec: SessionRecord, number: int) -> None:
        log = {"session_id": rec.session_id, "room": rec.room_name, "dispatch": number}
        # No agent has spoken yet: the greeting is still owed.
        dispatch = redispatch_for(rec, greet=rec.initial_greeting)
        agent_name = self.sessions.loaded_config().config.realtime.worker.agent_name
        try:
            await self.rooms.dispatch_agent(rec.room_name, agent_name, dispatch.to_json())
            logger.warning("no agent after the caller joined: dispatched again", extra=log)
        except StoreUnavailable as exc:
            logger.error("agent dispatch failed", extra=log | {"why": str(exc)})

    async def _give_up(self, rec: SessionRecord) -> None:
        notice = {
            "type": "session_ended",
            "session_id": rec.session_id,
            "status": SessionStatus.FAILED.value,
            "end_reason": NO_AGENT,
            "message": NO_AGENT_MESSAGE,
        }
        try:
            await self.rooms.send_data(rec.room_name, CALLER_TOPIC, json.dumps(notice).encode())
        except StoreUnavailable as exc:
            logger.warning("caller not told", extra={"session_id": rec.session_id, "why": str(exc)})
        await self.sessions.finish(rec, SessionStatus.FAILED, NO_AGENT, delete_room=True)
        logger.error(
            "no agent after every dispatch: session failed",
            extra={"session_id": rec.session_id, "room": rec.room_name},
        )
