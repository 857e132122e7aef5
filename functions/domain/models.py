"""Records of the control plane: sessions, API keys, and the join token a new session needs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voice.config.schema import AgentType
from voice.metadata import PhoneLeg
from voice.table import SessionGate


class SessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"
    FAILED = "failed"
    # Shown, never stored: an outbound phone call that is still ringing is stored as pending.
    DIALING = "dialing"

    @property
    def is_live(self) -> bool:
        return self in (SessionStatus.PENDING, SessionStatus.ACTIVE)


LIVE_STATUSES = (SessionStatus.PENDING, SessionStatus.ACTIVE)


class Backlog(StrEnum):
    """The sets the reaper sweeps: live sessions by status, and ended ones whose room remains."""

    PENDING = "pending"
    ACTIVE = "active"
    ROOM_DELETE = "room_delete"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class LimitKind(StrEnum):
    """Which live-session limit a counter enforces."""

    USER = "user"  # an API key's sessions that name no end user (max_sessions_per_user)
    END_USER = "end_user"  # one end user of an account (max_sessions_per_user)
    ACCOUNT = "account"  # everything an account holds (max_sessions_per_account or its own)


class CounterRef(_Record):
    """One live-session counter: its kind and whose it is (`<account>/<end user>` for an end user)."""

    kind: LimitKind
    owner: str

    @property
    def subject(self) -> str:
        """How a report names it; a user's counter by the user id alone, as before accounts."""
        if self.kind is LimitKind.USER:
            return self.owner
        return f"{self.kind.value.replace('_', ' ')} {self.owner}"


class Caller(_Record):
    """Who an API key speaks for: its user, and the account the user belongs to."""

    user_id: str
    account_id: str


class CallOverrides(_Record):
    """Per-call choices from POST /session that the agent applies on top of the config."""

    instructions: str | None = None
    greeting: str | None = None
    variables: dict[str, str] = {}
    language: str | None = None
    record: bool = False


class SessionRecord(_Record):
    session_id: str
    user_id: str
    room_name: str
    agent_type: AgentType
    initial_greeting: bool
    voice_profile: str | None = None
    metadata: dict[str, Any] = {}
    status: SessionStatus
    created_at: datetime
    # When the session ends at the latest: creation (then join) + max_session_duration.
    expires_at: datetime
    # The caller's token stops working then (reconnects during a live call use it).
    token_expires_at: datetime
    # A pending session whose caller has not joined by then is expired; None on older records.
    join_by: datetime | None = None
    joined_at: datetime | None = None
    agent_joined_at: datetime | None = None
    agent_left_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    duration_seconds: float | None = None
    config_version: str
    max_session_duration: int
    redispatch_count: int = 0
    room_delete_pending: bool = False
    overrides: CallOverrides = CallOverrides()
    # A phone call's numbers and direction; None for a web or app session.
    phone: PhoneLeg | None = None
    # The agent version it runs; None for the config file's agent.
    agent_id: str | None = None
    agent_version: int | None = None
    # The customer's own id of the person on the call (opaque), when the create gave one.
    end_user_id: str | None = None
    # The account whose limit it counts against; None on sessions created before accounts.
    account_id: str | None = None

    @property
    def counters(self) -> tuple[CounterRef, ...]:
        """The live-session counters it holds a place in while live, its own limit's first.

        Sessions from before accounts held the key's user counter alone, end user or not."""
        if self.account_id is None:
            return (CounterRef(kind=LimitKind.USER, owner=self.user_id),)
        own = (
            CounterRef(kind=LimitKind.END_USER, owner=f"{self.account_id}/{self.end_user_id}")
            if self.end_user_id is not None
            else CounterRef(kind=LimitKind.USER, owner=self.user_id)
        )
        return (own, CounterRef(kind=LimitKind.ACCOUNT, owner=self.account_id))

    @property
    def gate(self) -> SessionGate:
        """The status and join window that decide whether its room may have an agent."""
        return SessionGate(status=self.status.value, join_by=self.join_by)

    @property
    def shown_status(self) -> SessionStatus:
        """The status callers see: an outbound call not yet answered is `dialing`."""
        outbound = self.phone is not None and self.phone.direction == "outbound"
        if outbound and self.status is SessionStatus.PENDING:
            return SessionStatus.DIALING
        return self.status


class SessionEnd(_Record):
    """How a live session ends: its terminal status, when, why, and whether its room remains."""

    status: SessionStatus
    at: datetime
    reason: str
    room_delete_pending: bool = False


class ApiKeyRecord(_Record):
    """An API key as stored: its hash, never the key."""

    key_id: str
    key_hash: str
    user_id: str
    created_at: datetime
    revoked: bool = False
    # None on keys made before accounts: such a key's user is its own account.
    account_id: str | None = None

    @property
    def caller(self) -> Caller:
        return Caller(user_id=self.user_id, account_id=self.account_id or self.user_id)


class UsageRow(_Record):
    """Call time of one account on one day (UTC, the day calls ended) with one agent version."""

    day: str
    agent_id: str | None = None
    agent_version: int | None = None
    calls: int
    seconds: float


class AccountUsage(_Record):
    """An account now (live sessions, limits) and its call time over a range of days."""

    account_id: str
    live_sessions: int
    limit: int
    end_user_limit: int
    first_day: date
    last_day: date
    rows: list[UsageRow]


class JoinTokenRequest(_Record):
    """What a caller's join token grants: one room, and the agent dispatched into it."""

    room_name: str
    identity: str
    display_name: str
    ttl: timedelta
    empty_timeout: int
    max_participants: int
    agent_name: str
    dispatch_metadata: str


class IdempotencyClaim(_Record):
    """An `Idempotency-Key` taken by one user's create: which session it made, for which body.

    It holds the join token because a replay must return the very same one.
    """

    user_id: str
    key_hash: str
    request_hash: str
    session_id: str
    token: str = Field(repr=False)
    url: str
    created_at: datetime
    expires_at: datetime


class DialRequest(_Record):
    """One outbound call: who to ring, from which number, into which room with which agent."""

    room_name: str
    to: str  # E.164 through the configured trunk, or `sip:user@host:port` dialled directly
    caller_id: str
    identity: str
    agent_name: str
    dispatch_metadata: str
    empty_timeout: int
    ring_timeout: int


class WebhookDelivery(_Record):
    """One attempt to deliver a customer webhook, as the outbox consumer saw it."""

    event_id: str
    type: str
    attempt: int
    # delivered | retrying | dead_lettered
    outcome: str
    at: datetime
    # What went wrong (the receiver's status or the network error); None when delivered.
    detail: str | None = None
