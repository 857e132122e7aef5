"""Post-call analysis: a finished call's (already redacted) transcript to a summary, a success
verdict and typed fields, checked against their schema, stored with the session and announced."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from functions.domain.analysis import SessionAnalysis, SuccessVerdict
from functions.observability import logger
from functions.sessions.ports import AgentStorage, SessionStorage
from functions.sessions.service import Clock
from voice.config import LoadedConfig
from voice.config.analysis import AnalysisSettings
from voice.report import SessionReport

# The name the structured-output request carries (the test server answers it by this name).
SCHEMA_NAME = "call_analysis"
# A model answer that does not match the schema is asked for again this many times in all.
OUTPUT_ATTEMPTS = 2


class AnalysisModel(Protocol):
    """The analyst model: its JSON answer; raises `voice.chat_json.ModelUnavailable`."""

    def complete(
        self,
        settings: AnalysisSettings,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> str: ...


class AnalysisStorage(Protocol):
    def get(self, session_id: str) -> SessionAnalysis | None: ...
    def put(self, session_id: str, analysis: SessionAnalysis) -> None: ...


class ReportSource(Protocol):
    def read(self, session_id: str) -> SessionReport | None: ...


def output_schema(settings: AnalysisSettings) -> dict[str, Any]:
    """The JSON Schema the model's answer must match: what the settings ask for, nothing else."""
    properties: dict[str, Any] = {}
    if settings.summary:
        properties["summary"] = {"type": "string", "minLength": 1}
    if settings.success_criteria:
        properties["success"] = {
            "type": "object",
            "properties": {"verdict": {"type": "boolean"}, "reason": {"type": "string"}},
            "required": ["verdict", "reason"],
            "additionalProperties": False,
        }
    if settings.fields_schema is not None:
        properties["fields"] = settings.fields_schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def prompt(settings: AnalysisSettings, report: SessionReport) -> list[dict[str, str]]:
    asks = []
    if settings.summary:
        asks.append("`summary`: two or three sentences on what the call was about and its outcome")
    if settings.success_criteria:
        asks.append(
            "`success`: whether the call met these criteria (`verdict`, true or false) and why "
            f"(`reason`, one sentence). Criteria: {settings.success_criteria}"
        )
    if settings.fields_schema is not None:
        asks.append("`fields`: the values the schema's `fields` describes, taken from the call")
    system = (
        "You analyse a finished phone or voice call between a caller (user) and an AI agent "
        "(assistant). Answer with one JSON object matching the given schema:\n- "
        + "\n- ".join(asks)
        + "\nPlaceholders such as [phone] or [name] stand for redacted personal data: keep them."
    )
    if settings.instructions:
        system += f"\n{settings.instructions}"
    lines = "\n".join(f"{t.role}: {t.text}" for t in report.transcript) or "(no transcript)"
    return [{"role": "system", "content": system}, {"role": "user", "content": lines}]


def mismatch(answer: str, schema: dict[str, Any]) -> str | None:
    """Why `answer` is not a JSON document matching `schema`; None when it is one."""
    from jsonschema import validators  # deferred: only the analysis function pays for it

    try:
        document = json.loads(answer)
    except ValueError:
        return "the model's answer is not JSON"
    errors = sorted(validators.validator_for(schema)(schema).iter_errors(document), key=str)
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
    # The validator's message quotes the value; only the schema's side of it is kept.
    return f"the model's answer does not match the schema at {where}: {first.validator} failed"


@dataclass(frozen=True)
class CallAnalyst:
    store: SessionStorage
    reports: ReportSource
    results: AnalysisStorage
    model: AnalysisModel
    config: Callable[[], LoadedConfig]
    clock: Clock
    # Told the id of each session whose analysis was stored (the session.analyzed webhook).
    on_analyzed: Callable[[str], None]
    agents: AgentStorage | None = None

    def settings_for(self, report: SessionReport) -> AnalysisSettings:
        """The version's own analysis settings when it has them, else the config file's."""
        default = self.config().config.realtime.analysis
        if self.agents is None or report.agent_id is None or report.agent_version is None:
            return default
        version = self.agents.get_version(report.agent_id, report.agent_version)
        if version is None or version.spec.analysis is None:
            return default
        return version.spec.analysis

    def analyze(self, session_id: str) -> str:
        """Analyses the session's call once; what happened. Raises `ModelUnavailable` (and store
        errors) for the trigger to try again later."""
        log = {"session_id": session_id}
        rec = self.store.get(session_id, self.clock())
        report = self.reports.read(session_id)
        if rec is None or report is None:
            return "no_session" if rec is None else "no_report"
        settings = self.settings_for(report)
        if not settings.enabled:
            return "disabled"
        # The trigger delivers at least once: a stored analysis is never redone.
        if self.results.get(session_id) is not None:
            return "duplicate"
        analysis = self._run(settings, report)
        self.results.put(session_id, analysis)
        logger.info(
            "call analysed",
            extra=log | {"status": analysis.status, "attempts": analysis.attempts},
        )
        self.on_analyzed(session_id)
        return "analyzed" if analysis.status == "ok" else "error"

    def _run(self, settings: AnalysisSettings, report: SessionReport) -> SessionAnalysis:
        schema = output_schema(settings)
        messages = prompt(settings, report)
        why = ""
        for attempt in range(1, OUTPUT_ATTEMPTS + 1):
            answer = self.model.complete(settings, messages, SCHEMA_NAME, schema)
            why = mismatch(answer, schema) or ""
            if not why:
                return self._result(settings, json.loads(answer), attempt)
            logger.warning(
                "analysis output rejected",
                extra={"session_id": report.session_id, "attempt": attempt, "why": why},
            )
        return SessionAnalysis(
            status="error",
            analyzed_at=self.clock(),
            model=settings.model,
            attempts=OUTPUT_ATTEMPTS,
            error=why,
        )

    def _result(
        self, settings: AnalysisSettings, document: dict[str, Any], attempts: int
    ) -> SessionAnalysis:
        success = document.get("success")
        return SessionAnalysis(
            status="ok",
            analyzed_at=self.clock(),
            model=settings.model,
            attempts=attempts,
            summary=document.get("summary"),
            success=SuccessVerdict.model_validate(success) if success is not None else None,
            fields=document.get("fields"),
        )
