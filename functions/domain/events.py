"""Events the control plane reacts to: LiveKit room events, and its own delayed agent checks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class RoomEvent(BaseModel):
    """The parts of a LiveKit webhook event the state machine reads."""

    model_config = ConfigDict(frozen=True)

    event: str
    room_name: str
    participant_is_agent: bool = False
    created_at: datetime | None = None


class AgentCheck(BaseModel):
    """A delayed look at a joined call: has its agent arrived? `attempt` 0 is the first look."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    attempt: int = 0
