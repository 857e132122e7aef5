"""One agent per call. Two of our agents can end up in one room: when a LiveKit node dies the old
agent's connection resumes through the load balancer while the caller's token brings a new one,
and a dispatch can race a re-dispatch. The caller would hear both answer. So each agent watches
the room's other agents: the one that has not yet held the conversation leaves; between two that
have (or two that have not), the one with the greater identity. Both apply the same rule, so one
stays. An agent that leaves writes no report: the one that stays writes the call's."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from livekit import rtc

if TYPE_CHECKING:
    from livekit.agents import JobContext
    from loguru import Logger

# Set to "1" on an agent's participant once it holds the conversation (a caller's turn heard, or
# a lost agent's turns resumed).
CONVERSING_ATTRIBUTE = "voice.conversing"
DUPLICATE_AGENT = "duplicate_agent"
AGENT_KIND = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


def leaves_for(conversing: bool, identity: str, other: rtc.Participant) -> bool:
    """True when an agent (`conversing`, `identity`) must leave the room to `other`."""
    if other.kind != AGENT_KIND or other.identity == identity:
        return False
    theirs = other.attributes.get(CONVERSING_ATTRIBUTE) == "1"
    if theirs != conversing:
        return theirs
    return identity > other.identity


class OneAgent:
    """Watches one job's room for another of our agents; leaves when the rule says so."""

    def __init__(self, ctx: JobContext, log: Logger, *, conversing: bool) -> None:
        self._ctx = ctx
        self._log = log
        self.conversing = conversing
        self.leaving = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        room = self._ctx.room
        room.on("participant_connected", self._check)
        room.on("participant_attributes_changed", lambda _changed, p: self._check(p))
        room.on("reconnected", self._reconnected)
        if self.conversing:
            self._publish()
        for participant in list(room.remote_participants.values()):
            self._check(participant)

    def _reconnected(self) -> None:
        # A connection that resumed in a room rebuilt on another node starts without our
        # attributes: publish them again before the other agent weighs us.
        if self.conversing:
            self._publish()
        for participant in list(self._ctx.room.remote_participants.values()):
            self._check(participant)

    def on_item_added(self, ev: Any) -> None:
        """A conversation item (the session's `conversation_item_added`): a caller's turn makes
        this agent the one holding the conversation."""
        if not self.conversing and getattr(ev.item, "role", None) == "user":
            self.conversing = True
            self._publish()

    def _publish(self) -> None:
        local = self._ctx.room.local_participant
        task = asyncio.create_task(local.set_attributes({CONVERSING_ATTRIBUTE: "1"}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check(self, other: rtc.Participant) -> None:
        if self.leaving:
            return
        identity = self._ctx.room.local_participant.identity
        if not leaves_for(self.conversing, identity, other):
            return
        self.leaving = True
        self._log.warning(
            "another agent serves this call: this one leaves",
            other=other.identity,
            conversing=self.conversing,
        )
        self._ctx.shutdown(reason=DUPLICATE_AGENT)
