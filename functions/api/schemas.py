"""Request and response models of the HTTP API (the reference contract, extended)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.domain.analysis import SessionAnalysis
from functions.domain.models import AccountUsage, SessionRecord, SessionStatus
from voice.config import ConfigStatus
from voice.config.schema import AgentType

MAX_INSTRUCTIONS_CHARS = 4000
MAX_GREETING_CHARS = 500
MAX_VARIABLES = 32
AgentIdField = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EndUserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
AGENT_ID_DOC = "an agent of yours (POST /agents); without it, the config file's agent serves"
AGENT_VERSION_DOC = "run this version of agent_id; without it, the agent's traffic split picks"
END_USER_DOC = (
    "your own opaque id of the person on the call: keeps them on one agent version, and counts "
    "the session against their own limit (max_sessions_per_user) instead of your key's"
)
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, StringConstraints(max_length=500)]


class CallChoices(BaseModel):
    """Per-call choices POST /session and POST /call both take, with the same caps and rules
    (`voice.realtime.agent.allow_overrides: false` refuses them on both)."""

    model_config = ConfigDict(extra="forbid")

    instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INSTRUCTIONS_CHARS,
        description="added to the agent's configured instructions for this call; {{name}} filled",
    )
    greeting: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_GREETING_CHARS,
        description="the agent's first sentence, spoken as written; {{name}} filled",
    )
    variables: dict[VariableName, VariableValue] | None = Field(
        default=None,
        max_length=MAX_VARIABLES,
        description="string values for {{name}} placeholders in instructions and greeting",
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
        description="the caller's language for speech recognition, e.g. en, de, pt-BR",
    )


class SessionCreate(CallChoices):
    agent_type: AgentType | None = Field(
        default=None, description="smart_router or single_agent; default from config"
    )
    initial_greeting: bool | None = Field(
        default=None, description="the agent speaks first; default from config"
    )
    voice_profile: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="a profile named in voice.voice_profiles (GET /config lists them)",
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="small JSON object passed to the agent (size-capped)"
    )
    record: bool | None = Field(
        default=None,
        description="record both sides (needs voice.realtime.recording.enabled)",
    )
    agent_id: AgentIdField | None = Field(default=None, description=AGENT_ID_DOC)
    agent_version: int | None = Field(default=None, ge=1, description=AGENT_VERSION_DOC)
    end_user_id: EndUserId | None = Field(default=None, description=END_USER_DOC)


class SessionCreated(BaseModel):
    session_id: str
    room_name: str
    token: str
    url: str
    expires_at: datetime
    token_expires_at: datetime
    join_by: datetime | None = Field(
        default=None, description="join before this, or the session expires (never_joined)"
    )
    status: SessionStatus


class Usage(BaseModel):
    duration_seconds: float | None = Field(default=None, description="from the join to the end")
    # The rest comes from the worker's session report, once it has been written.
    stt_audio_seconds: float | None = Field(default=None, description="audio transcribed")
    llm_prompt_tokens: int | None = Field(default=None, description="prompt tokens, all turns")
    llm_completion_tokens: int | None = Field(default=None, description="completion tokens")
    tts_characters: int | None = Field(default=None, description="characters spoken by TTS")
    turns: int | None = Field(default=None, description="agent turns in the call")


class PhoneCallPublic(BaseModel):
    direction: Literal["inbound", "outbound"]
    number: str = Field(description="ours: the number called, or the caller id we dialled from")
    remote: str = Field(description="the caller's number (inbound) or the number dialled")


class SessionPublic(BaseModel):
    session_id: str
    room_name: str
    status: SessionStatus
    agent_type: AgentType
    initial_greeting: bool
    voice_profile: str | None
    metadata: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    token_expires_at: datetime
    join_by: datetime | None = None
    joined_at: datetime | None
    agent_joined: bool
    agent_joined_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    config_version: str
    usage: Usage | None = Field(default=None, description="present once the session has ended")
    record: bool = Field(default=False, description="the call is recorded")
    recording_url: str | None = Field(
        default=None, description="short-lived link to the recording, once the call has ended"
    )
    phone: PhoneCallPublic | None = Field(
        default=None, description="a phone call's direction and numbers; null for web sessions"
    )
    agent_id: str | None = Field(default=None, description="null: the config file's agent")
    agent_version: int | None = Field(default=None, description="the agent version it runs")
    end_user_id: str | None = None
    analysis: SessionAnalysis | None = Field(
        default=None,
        description=(
            "the post-call analysis (voice.realtime.analysis), once it has run after the end: "
            "status ok with summary, success and fields, or status error saying why"
        ),
    )

    @classmethod
    def of(
        cls,
        rec: SessionRecord,
        report_usage: dict[str, Any] | None = None,
        recording_url: str | None = None,
        analysis: SessionAnalysis | None = None,
    ) -> SessionPublic:
        usage = None
        if not rec.status.is_live:
            usage = Usage.model_validate(
                (report_usage or {}) | {"duration_seconds": rec.duration_seconds}
            )
        # The record's other fields (user id, counters, internal flags) are not for the caller.
        return cls.model_validate(
            rec.model_dump()
            | {
                "agent_joined": rec.agent_joined_at is not None,
                "usage": usage,
                "record": rec.overrides.record,
                "recording_url": recording_url,
                "status": rec.shown_status,
                "analysis": analysis,
            }
        )


class SessionPage(BaseModel):
    sessions: list[SessionPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at end")


class ConfigHealth(BaseModel):
    """The config this process serves; `stale_since` is set while a newer one fails to load."""

    version: str
    source: str
    loaded_at: datetime
    stale_since: datetime | None = None

    @classmethod
    def of(cls, status: ConfigStatus | None) -> ConfigHealth | None:
        if status is None:
            return None
        stale = status.stale_since
        return cls(
            version=status.version,
            source=status.source,
            loaded_at=datetime.fromtimestamp(status.loaded_at, UTC),
            stale_since=None if stale is None else datetime.fromtimestamp(stale, UTC),
        )


class HealthResponse(BaseModel):
    status: str
    livekit_connected: bool
    livekit_url: str
    active_rooms: int | None
    active_sessions: int | None
    timestamp: datetime
    config: ConfigHealth | None = None


class ErrorBody(BaseModel):
    error: str
    message: str


class WebhookAck(BaseModel):
    session_id: str | None
    action: str


class TranscriptLinePublic(BaseModel):
    role: str = Field(description="user or assistant")
    text: str
    started_at: str


class TranscriptPublic(BaseModel):
    session_id: str
    end_reason: str | None
    duration_seconds: float | None
    transcript: list[TranscriptLinePublic] = Field(description="both sides, in order")
    usage: dict[str, Any] = Field(description="STT seconds, LLM tokens, TTS characters, turns")
    turns: list[dict[str, Any]] = Field(description="per-turn latency in milliseconds")
    recording_url: str | None = Field(description="short-lived link, when the call was recorded")


class WebhookDeliveryPublic(BaseModel):
    event_id: str = Field(description="the event's id, the same in every attempt to deliver it")
    type: str = Field(description="session.started, session.ended or session.failed")
    attempt: int = Field(description="1 for the first attempt")
    outcome: str = Field(
        description="delivered, retrying (it failed and will be sent again) or dead_lettered"
    )
    at: datetime
    detail: str | None = Field(description="what went wrong; null when delivered")


class WebhookDeliveries(BaseModel):
    session_id: str
    deliveries: list[WebhookDeliveryPublic] = Field(description="every attempt, oldest first")


class CallCreate(CallChoices):
    to: str = Field(
        min_length=3,
        max_length=300,
        description="the number to call in E.164 (+15550123); the local stack also takes sip:user@host:port",
    )
    agent_type: AgentType | None = Field(default=None, description="default from config")
    voice_profile: str | None = Field(default=None, min_length=1, max_length=64)
    metadata: dict[str, Any] | None = Field(
        default=None, description="small JSON object passed to the agent (size-capped)"
    )
    agent_id: AgentIdField | None = Field(default=None, description=AGENT_ID_DOC)
    agent_version: int | None = Field(default=None, ge=1, description=AGENT_VERSION_DOC)
    end_user_id: EndUserId | None = Field(default=None, description=END_USER_DOC)


class UsageTotal(BaseModel):
    calls: int = Field(description="calls that ended (a caller had joined)")
    minutes: float = Field(description="from each caller's join to the call's end, summed")


class UsageDay(UsageTotal):
    day: date = Field(description="UTC; a call counts on the day it ended")


class UsageVersion(UsageTotal):
    agent_id: str | None = Field(description="null: the config file's agent")
    agent_version: int | None


class UsageDayVersion(UsageVersion):
    day: date


class UsagePublic(BaseModel):
    account_id: str
    live_sessions: int = Field(description="live (pending or active) sessions of the account now")
    limit: int = Field(description="the account's limit of live sessions (429 past it)")
    end_user_limit: int = Field(
        description="live sessions one end_user_id (or a key naming none) may hold"
    )
    from_day: date = Field(alias="from")
    to_day: date = Field(alias="to")
    days: list[UsageDay] = Field(description="per day, oldest first; days without calls left out")
    versions: list[UsageVersion] = Field(description="per agent version over the whole range")
    rows: list[UsageDayVersion] = Field(description="per day and agent version")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def of(cls, usage: AccountUsage) -> UsagePublic:
        days: dict[date, list[float]] = {}
        versions: dict[tuple[str | None, int | None], list[float]] = {}
        rows = []
        for r in sorted(usage.rows, key=lambda r: (r.day, r.agent_id or "", r.agent_version or 0)):
            day = date.fromisoformat(r.day)
            for total in (
                days.setdefault(day, [0, 0.0]),
                versions.setdefault((r.agent_id, r.agent_version), [0, 0.0]),
            ):
                total[0] += r.calls
                total[1] += r.seconds
            rows.append(
                UsageDayVersion(
                    day=day,
                    agent_id=r.agent_id,
                    agent_version=r.agent_version,
                    calls=r.calls,
                    minutes=_minutes(r.seconds),
                )
            )
        return cls(
            account_id=usage.account_id,
            live_sessions=usage.live_sessions,
            limit=usage.limit,
            end_user_limit=usage.end_user_limit,
            from_day=usage.first_day,
            to_day=usage.last_day,
            days=[UsageDay(day=d, calls=int(c), minutes=_minutes(s)) for d, (c, s) in days.items()],
            versions=[
                UsageVersion(agent_id=a, agent_version=v, calls=int(c), minutes=_minutes(s))
                for (a, v), (c, s) in versions.items()
            ],
            rows=rows,
        )


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 2)


class CallCreated(BaseModel):
    session_id: str
    room_name: str
    status: SessionStatus = Field(description="dialing until the callee answers")
