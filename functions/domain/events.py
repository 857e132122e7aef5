"""Events the control plane reacts to: LiveKit room events, and its own delayed agent checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class RoomEvent(BaseModel):
    """The parts of a LiveKit webhook event the state machine reads."""

    model_config = ConfigDict(frozen=True)

    event: str
    room_name: str
    participant_is_agent: bool = False
    created_at: datetime | None = None
    # Phone calls: the SIP participant, its `sip.*` attributes (numbers, call status) and, when
    # it left, LiveKit's disconnect reason (e.g. USER_REJECTED for a busy or declining callee).
    participant_is_sip: bool = False
    participant_attributes: dict[str, str] = {}
    disconnect_reason: str = ""


@dataclass(frozen=True)
class EventOutcome:
    """What applying one LiveKit event did (for the webhook's answer and the logs)."""

    session_id: str | None
    action: str


class Participant(BaseModel):
    """Someone in a LiveKit room as the room service lists them: an agent, or a caller (app user
    or phone), and when they joined."""

    model_config = ConfigDict(frozen=True)

    identity: str
    is_agent: bool = False
    joined_at: datetime | None = None
    # A phone participant's `sip.callStatus` ("dialing", "ringing", "active", ...); None otherwise.
    call_status: str | None = None

    @property
    def is_caller(self) -> bool:
        """A person on the call: not the agent, and not a phone that is still ringing."""
        return not self.is_agent and self.call_status in (None, "active")


class AgentCheck(BaseModel):
    """A delayed look at a joined call: has its agent arrived? `attempt` 0 is the first look."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    attempt: int = 0


class OutboxMessage(BaseModel):
    """A customer webhook waiting in the outbox queue: which event, for which session, how far."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    # Empty for an agent's event (agent.rolled_back), which names the agent and traffic revision.
    session_id: str = ""
    created_at: datetime
    agent_id: str | None = None
    revision: int | None = None
    # Failed deliveries so far; the retry schedule and the dead letter go by it.
    attempt: int = 0
