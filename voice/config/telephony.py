"""Config for phone calls (`voice.realtime.telephony`): numbers that answer, and the trunk that dials."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voice.config.patterns import E164, HOST_PORT

PhoneNumber = Annotated[str, Field(pattern=E164)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InboundNumber(_Section):
    """A number that answers: its calls become sessions owned by `user`, under that user's limits."""

    number: PhoneNumber
    user: Annotated[str, Field(min_length=1, max_length=128)]
    agent_type: Literal["smart_router", "single_agent"] | None = None
    instructions: str | None = None
    greeting: str | None = None
    voice_profile: str | None = None
    # One of `user`'s agents (POST /agents): its traffic split picks each caller's version by
    # their number. Without it, the config file's agent answers.
    agent_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class OutboundTrunk(_Section):
    """Where outbound calls go; the trunk's password comes from `VOICE_SIP_PASSWORD`, never here."""

    address: Annotated[str, Field(min_length=3, pattern=HOST_PORT)]  # host:port
    number: PhoneNumber  # the caller id the callee sees
    transport: Literal["auto", "udp", "tcp", "tls"] = "auto"
    username: str = ""


class TelephonySettings(_Section):
    enabled: bool = False
    inbound: list[InboundNumber] = []
    outbound: OutboundTrunk | None = None
    # `transfer_call` hands the caller to this number (a human); no number, no transfer tool.
    transfer_to: PhoneNumber | None = None
    # An answered outbound call: the agent greets after this much silence, or when the callee speaks.
    answer_silence_seconds: Annotated[float, Field(ge=0.0, le=10.0)] = 1.5
    # How long an outbound call may ring before it ends `failed` / `no_answer`.
    ring_timeout_seconds: Annotated[int, Field(ge=5, le=120)] = 30

    @model_validator(mode="after")
    def _numbers_once(self) -> TelephonySettings:
        seen: set[str] = set()
        for entry in self.inbound:
            if entry.number in seen:
                raise ValueError(
                    f"realtime.telephony.inbound lists {entry.number} twice; "
                    "a number routes to one user"
                )
            seen.add(entry.number)
        return self

    def route_for(self, number: str) -> InboundNumber | None:
        return next((e for e in self.inbound if e.number == number), None)
