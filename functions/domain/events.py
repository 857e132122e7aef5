"""Room events from LiveKit's signed webhooks, in our own shape (no protobufs past the store)."""

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
    # Phone calls: the SIP participant, its `sip.*` attributes (numbers, call status) and, when
    # it left, LiveKit's disconnect reason (e.g. USER_REJECTED for a busy or declining callee).
    participant_is_sip: bool = False
    participant_attributes: dict[str, str] = {}
    disconnect_reason: str = ""
