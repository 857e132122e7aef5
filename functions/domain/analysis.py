"""A finished call's post-call analysis as stored with its session: a result, or why there is none."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class SuccessVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Whether the call met `voice.realtime.analysis.success_criteria`.
    verdict: bool
    reason: str


class SessionAnalysis(BaseModel):
    """`status` ok: what the model extracted, checked against the schema; error: why not (the
    model's output never matched, after a retry); the output itself is never kept then."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "error"]
    analyzed_at: datetime
    model: str
    attempts: int
    summary: str | None = None
    success: SuccessVerdict | None = None
    fields: dict[str, Any] | None = None
    error: str | None = None
