"""Automatic rollback: each canary version judged against its agent's baseline over a window."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from functions.agents.service import AgentService
from functions.domain.agents import Allocation
from functions.domain.errors import DomainError
from functions.domain.models import SessionRecord, SessionStatus
from functions.observability import logger
from functions.sessions.ports import AgentStorage, ReportReader, SessionStorage
from functions.store.errors import StoreError
from voice.config import LoadedConfig
from voice.config.schema import RolloutSettings
from voice.report import SessionReport

# Sessions read per page while walking an owner's sessions back to the window's start.
_PAGE = 100


@dataclass
class VersionStats:
    """One version's finished sessions in the window: how many, how many failed, turn latencies."""

    version: int
    sessions: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        return self.failures / self.sessions if self.sessions else 0.0

    @property
    def p95_ms(self) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def add(self, rec: SessionRecord, report: SessionReport | None) -> None:
        self.sessions += 1
        # A session fails when it ended failed (no agent, a crash), its agent hit a provider
        # error it could not recover from, or left a caller's turn unanswered.
        broke = report is not None and (report.agent_errors or report.unanswered_turns)
        if rec.status is SessionStatus.FAILED or broke:
            self.failures += 1
        if report is not None:
            self.latencies_ms += [t.end_to_end_ms for t in report.turns if t.end_to_end_ms]

    def describe(self) -> str:
        return (
            f"version {self.version}: {self.failures} of {self.sessions} sessions failed "
            f"({self.failure_rate:.0%}), p95 {_ms(self.p95_ms)}"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def verdict(settings: RolloutSettings, baseline: VersionStats, canary: VersionStats) -> str | None:
    """Why the canary must go (a sentence for people), or None when it may stay."""
    if min(baseline.sessions, canary.sessions) < settings.min_sessions:
        return None
    if canary.failures and canary.failure_rate > settings.failure_multiple * baseline.failure_rate:
        return (
            f"{canary.describe()} against {baseline.describe()}: more than "
            f"{settings.failure_multiple}x the baseline's failure rate"
        )
    slow, fast = canary.p95_ms, baseline.p95_ms
    if slow is not None and fast is not None and slow > fast + settings.latency_margin_ms:
        return (
            f"{canary.describe()} against {baseline.describe()}: p95 more than "
            f"{settings.latency_margin_ms} ms slower than the baseline's"
        )
    return None


@dataclass(frozen=True)
class RolloutMonitor:
    agents: AgentService
    store: AgentStorage
    sessions: SessionStorage
    reports: ReportReader
    config: Callable[[], LoadedConfig]
    clock: Callable[[], datetime]
    # Told of each rollback (the customer webhook).
    on_rolled_back: Callable[[Allocation], None] = lambda _: None

    def check(self) -> list[Allocation]:
        """Judges every split in force; returns the allocations it rolled back to."""
        settings = self.config().config.realtime.rollout
        if not settings.auto_rollback:
            return []
        done = []
        for alloc in self.store.canaries():
            try:
                rolled = self._judge(alloc, settings)
            except (StoreError, DomainError) as exc:
                logger.warning(
                    "canary not judged", extra={"agent_id": alloc.agent_id, "why": str(exc)}
                )
                continue
            if rolled is not None:
                done.append(rolled)
        return done

    def _judge(self, alloc: Allocation, settings: RolloutSettings) -> Allocation | None:
        agent = self.store.get_agent(alloc.agent_id)
        if agent is None:
            return None
        now = self.clock()
        since = max(now - timedelta(seconds=settings.window_seconds), alloc.at)
        stats = {e.version: VersionStats(e.version) for e in alloc.entries}
        for rec in self._finished_since(agent.owner, alloc.agent_id, since, now):
            if rec.agent_version in stats:
                stats[rec.agent_version].add(rec, self.reports.report(rec.session_id))
        baseline = stats[alloc.baseline]
        for version, canary in stats.items():
            if version == alloc.baseline:
                continue
            reason = verdict(settings, baseline, canary)
            if reason is None:
                continue
            rolled = self.agents.roll_back_to_baseline(alloc, reason)
            logger.warning(
                "canary rolled back",
                extra={"agent_id": alloc.agent_id, "revision": rolled.revision, "reason": reason},
            )
            self.on_rolled_back(rolled)
            return rolled
        return None

    def _finished_since(
        self, owner: str, agent_id: str, since: datetime, now: datetime
    ) -> Iterator[SessionRecord]:
        """The agent's finished sessions created since `since` (the owner's, newest first)."""
        cursor = None
        while True:
            page, cursor = self.sessions.list_for_user(owner, _PAGE, cursor, now)
            for rec in page:
                if rec.created_at < since:
                    return
                if rec.agent_id == agent_id and not rec.status.is_live:
                    yield rec
            if cursor is None:
                return
