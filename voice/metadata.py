"""The dispatch metadata contract: what the API puts on the agent dispatch and the worker reads."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from voice.config.schema import AgentType

# Left out of the JSON when unset: per-call overrides, the phone leg, the agent version.
_OVERRIDES = (
    "instructions",
    "greeting",
    "variables",
    "language",
    "record",
    "phone",
    "agent_id",
    "agent_version",
    "traceparent",
)


# The agent marks a phone's participant with this attribute before it hangs up on it, so the
# control plane ends the session with that reason rather than `caller_left`.
END_REASON_ATTRIBUTE = "voice.end_reason"
VOICEMAIL = "voicemail"


class PhoneLeg(BaseModel):
    """The phone side of a call: which way it goes, our number, and the other party's."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    direction: Literal["inbound", "outbound"]
    number: str  # ours: the number called (inbound) or the caller id we show (outbound)
    remote: str = ""  # the caller's number (inbound) or who we dial (outbound)


class DispatchMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Empty for an inbound phone call: a dispatch rule's metadata is the same for every call, so
    # the worker takes the session id from the call's room (voice.rooms.session_id_from_room).
    session_id: str
    agent_type: AgentType
    initial_greeting: bool
    voice_profile: str | None = None
    metadata: dict[str, Any] = {}
    # Per-call overrides from POST /session (validated and capped by the API).
    instructions: str | None = None
    greeting: str | None = None
    variables: dict[str, str] = {}
    language: str | None = None
    record: bool = False
    # A phone call's direction and numbers; None for a web or app session.
    phone: PhoneLeg | None = None
    # The agent version the call runs (the worker reads it from the table); None: the config's.
    agent_id: str | None = None
    agent_version: int | None = None
    # The W3C trace context of the API's dispatch span: the worker's spans join the same trace.
    traceparent: str | None = None

    def to_json(self) -> str:
        # Overrides a call did not use stay out of the join token, which carries this JSON.
        unused = {
            name
            for name in _OVERRIDES
            if getattr(self, name) == DispatchMetadata.model_fields[name].default
        }
        return self.model_dump_json(exclude=unused)

    @classmethod
    def parse(cls, raw: str | None) -> DispatchMetadata:
        """Parses the job's metadata; raises ValueError with a readable reason when it is unusable."""
        if not raw:
            raise ValueError("dispatch metadata is empty")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"dispatch metadata is not JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise ValueError("dispatch metadata is not a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"dispatch metadata field '{field}': {first['msg']}") from exc
