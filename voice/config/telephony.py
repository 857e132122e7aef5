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


class VoicemailSettings(_Section):
    """An outbound call answered by a machine: hang up, or leave a message after the beep."""

    # Listen to how the callee answers (livekit-agents' answering-machine detector) before the
    # agent speaks. Off: the agent greets whoever (or whatever) answers.
    detect: bool = False
    action: Literal["hang_up", "leave_message"] = "hang_up"
    # Spoken as written after the beep (with {{variables}} of the call filled in).
    message: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    # How long the detector listens before it settles (then the call goes on as with a person).
    detection_timeout_seconds: Annotated[float, Field(ge=5.0, le=60.0)] = 20.0
    # How long to wait for the beep once a machine is detected; then the message is left anyway.
    beep_timeout_seconds: Annotated[float, Field(ge=0.0, le=60.0)] = 10.0

    @model_validator(mode="after")
    def _message_to_leave(self) -> VoicemailSettings:
        if self.action == "leave_message" and not self.message:
            raise ValueError("action leave_message needs a message (the words left on the machine)")
        return self


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
    voicemail: VoicemailSettings = VoicemailSettings()

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
