"""Records of agents: the agent, its immutable versions, and its traffic allocation with history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voice.agents import AgentSpec

MAX_TRAFFIC_ENTRIES = 5
TrafficAction = Literal["publish", "set", "promote", "rollback", "auto_rollback"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class AgentRecord(_Record):
    agent_id: str
    # The account (API-key user) that owns it; no other account can see it.
    owner: str
    name: str
    created_at: datetime
    created_by: str
    latest_version: int = 0


class AgentVersionRecord(_Record):
    agent_id: str
    version: int
    spec: AgentSpec
    created_at: datetime
    created_by: str
    note: str | None = None


class EvalResult(_Record):
    """A version's latest evaluation (`python -m evals`): kept beside the immutable version."""

    agent_id: str
    version: int
    suite: str
    mode: Literal["text", "audio"]
    passed: bool
    pass_rate: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(ge=0.0, le=1.0)
    scenarios: int = Field(ge=0)
    runs: int = Field(ge=0)
    failed: list[str] = []
    ran_at: datetime
    ran_by: str


class TrafficEntry(_Record):
    version: int = Field(ge=1)
    percent: int = Field(ge=1, le=100)


class ChosenVersion(_Record):
    """The agent version a session runs, and how it was chosen."""

    agent_id: str
    version: int
    spec: AgentSpec
    # "explicit" (the create named it) or "traffic" (the sticky split picked it).
    by: Literal["explicit", "traffic"]


class Allocation(_Record):
    """One revision of an agent's traffic; every revision is kept as history.

    `previous_revision` is the revision a rollback of this one restores: the one it replaced,
    or, for a rollback, the revision before the one it restored (so rollbacks walk back in turn).
    """

    agent_id: str
    revision: int
    entries: list[TrafficEntry]
    action: TrafficAction
    at: datetime
    actor: str
    reason: str | None = None
    previous_revision: int | None = None

    @property
    def baseline(self) -> int:
        """The version most traffic goes to (the lowest of equals): what a rollback protects."""
        return max(self.entries, key=lambda e: (e.percent, -e.version)).version
