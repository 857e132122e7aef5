"""Request and response models of the agents API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.domain.agents import (
    MAX_TRAFFIC_ENTRIES,
    AgentRecord,
    AgentVersionRecord,
    Allocation,
    EvalResult,
    TrafficAction,
    TrafficEntry,
)
from voice.config import redact


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="a name for people; not unique")


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "sections of the config file this version sets: agent, voice_profiles, providers, "
            "vad, turn_detection, interruptions, mcp_servers, analysis; the rest comes from the "
            "deployment config at publish time, and the version stores the complete result "
            "(analysis, when not set, follows the deployment config's at call time)"
        ),
    )
    note: str | None = Field(default=None, max_length=500, description="what changed, for people")


class TrafficEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    percent: int = Field(ge=1, le=100)


class TrafficUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traffic: list[TrafficEntryIn] = Field(
        min_length=1,
        max_length=MAX_TRAFFIC_ENTRIES,
        description=f"up to {MAX_TRAFFIC_ENTRIES} {{version, percent}} entries totalling 100",
    )
    expected_revision: int | None = Field(
        default=None, ge=1, description="the revision this replaces (or send If-Match)"
    )

    def entries(self) -> list[TrafficEntry]:
        return [TrafficEntry(version=e.version, percent=e.percent) for e in self.traffic]


class Promote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="gets 100% of new sessions")
    expected_revision: int | None = Field(default=None, ge=1)


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_revision: int | None = Field(default=None, ge=1)
    reason: str | None = Field(default=None, max_length=500)


class TrafficPublic(BaseModel):
    agent_id: str
    revision: int = Field(description="also the ETag; send it back as If-Match to change traffic")
    traffic: list[TrafficEntry]
    action: TrafficAction
    at: datetime
    actor: str
    reason: str | None = None
    previous_revision: int | None = Field(
        default=None, description="the revision POST .../rollback restores; null for the first"
    )

    @classmethod
    def of(cls, alloc: Allocation) -> TrafficPublic:
        return cls.model_validate(alloc.model_dump() | {"traffic": alloc.entries})


class AgentPublic(BaseModel):
    agent_id: str
    name: str
    created_at: datetime
    created_by: str
    latest_version: int = Field(description="0 until a version is published")

    @classmethod
    def of(cls, rec: AgentRecord) -> AgentPublic:
        return cls.model_validate(rec.model_dump())


class AgentList(BaseModel):
    agents: list[AgentPublic]


class EvalCreate(BaseModel):
    """A run of `python -m evals` against this version (the runner posts it with `--api`)."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(min_length=1, max_length=200)
    mode: Literal["text", "audio"]
    pass_rate: float = Field(ge=0.0, le=1.0, description="runs passed / runs, over the suite")
    threshold: float = Field(ge=0.0, le=1.0, description="the suite's pass threshold")
    scenarios: int = Field(ge=0, le=10_000)
    runs: int = Field(ge=0, le=1_000_000)
    failed: list[str] = Field(
        default_factory=list, max_length=1000, description="scenarios that did not pass every run"
    )


class EvalPublic(BaseModel):
    suite: str
    mode: Literal["text", "audio"]
    passed: bool = Field(description="pass_rate reached the threshold")
    pass_rate: float
    threshold: float
    scenarios: int
    runs: int
    failed: list[str]
    ran_at: datetime
    ran_by: str

    @classmethod
    def of(cls, result: EvalResult) -> EvalPublic:
        return cls.model_validate(result.model_dump(exclude={"agent_id", "version"}))


class VersionPublic(BaseModel):
    agent_id: str
    version: int
    created_at: datetime
    created_by: str
    note: str | None
    config: dict[str, Any] = Field(description="the version's complete content, secrets masked")
    latest_eval: EvalPublic | None = Field(
        default=None, description="its latest evaluation (GET .../versions/{n} only); null: none"
    )

    @classmethod
    def of(cls, rec: AgentVersionRecord, latest_eval: EvalResult | None = None) -> VersionPublic:
        return cls(
            agent_id=rec.agent_id,
            version=rec.version,
            created_at=rec.created_at,
            created_by=rec.created_by,
            note=rec.note,
            config=redact(rec.spec.model_dump(mode="json")),
            latest_eval=None if latest_eval is None else EvalPublic.of(latest_eval),
        )


class VersionList(BaseModel):
    versions: list[VersionPublic]


class TrafficHistory(BaseModel):
    allocations: list[TrafficPublic] = Field(description="every revision, oldest first")


class AssignmentPublic(BaseModel):
    agent_id: str
    version: int = Field(description="the version a new session of this caller runs now")
