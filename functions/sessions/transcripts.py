"""A finished call as its owner sees it: transcript, usage, per-turn latency and the recording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from functions.domain.analysis import SessionAnalysis
from functions.domain.errors import NotFound
from functions.domain.models import SessionRecord
from functions.observability import logger
from functions.sessions.analysis import AnalysisStorage
from functions.sessions.ports import ReportReader
from functions.store.errors import StoreUnavailable
from voice.config import LoadedConfig
from voice.report import SessionReport
from voice.webhooks import CallReport, TranscriptLine


@dataclass(frozen=True)
class CallReports:
    reports: ReportReader
    config: Callable[[], LoadedConfig]
    analyses: AnalysisStorage | None = None

    def read(self, session_id: str) -> SessionReport | None:
        return self.reports.report(session_id)

    def transcript(self, rec: SessionRecord) -> CallReport:
        """The ended call's report; NotFound (saying why) while there is none to give."""
        if rec.status.is_live:
            raise NotFound(
                f"session '{rec.session_id}' is {rec.status.value}: the transcript is available "
                "once the call has ended"
            )
        report = self.read(rec.session_id)
        if report is None:
            raise NotFound(
                f"session '{rec.session_id}' has no transcript yet: the agent writes it as the "
                "call closes (a few seconds after the end), or the call never reached an agent"
            )
        return self.public(rec, report)

    def public(self, rec: SessionRecord, report: SessionReport) -> CallReport:
        return CallReport(
            end_reason=rec.end_reason,
            duration_seconds=rec.duration_seconds,
            transcript=[
                TranscriptLine(role=t.role, text=t.text, started_at=t.at) for t in report.transcript
            ],
            usage=report.usage.model_dump() | {"turns": len(report.turns)},
            turns=[t.model_dump() for t in report.turns],
            recording_url=self.recording_url(rec, report),
        )

    def analysis(self, rec: SessionRecord) -> SessionAnalysis | None:
        """The ended call's post-call analysis, once it has run (None while it has not, or when
        the table cannot say: the session itself is still worth answering)."""
        if rec.status.is_live or self.analyses is None:
            return None
        try:
            return self.analyses.get(rec.session_id)
        except StoreUnavailable:
            logger.warning("analysis unreadable", extra={"session_id": rec.session_id})
            return None

    def recording_url(self, rec: SessionRecord, report: SessionReport | None = None) -> str | None:
        """A short-lived link to the call's recording, when it was recorded and has been written."""
        if rec.status.is_live or not rec.overrides.record:
            return None
        report = report or self.read(rec.session_id)
        if report is None or report.recording_key is None:
            return None
        ttl = self.config().config.realtime.recording.url_ttl_seconds
        try:
            return self.reports.recording_url(report.recording_key, ttl)
        except StoreUnavailable:
            return None
