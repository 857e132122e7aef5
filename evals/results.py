"""What a run produced: the conversation, the checks' verdicts, the suite's pass rate; JSON and a
readable report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from evals.scenario import Mode

Verdict = Literal["pass", "fail", "unsure", "skipped"]
EventKind = Literal["caller", "agent", "tool_call", "tool_output", "handoff", "end_call"]


class Event(BaseModel):
    """One thing that happened in the conversation, in order."""

    kind: EventKind
    text: str = ""
    # tool_call / tool_output: the tool; handoff: the agent handed to.
    name: str | None = None
    arguments: dict[str, Any] = {}
    # agent: end of the caller's turn -> this reply (text: the reply's first text; audio: its
    # first audio heard), for the first reply after each caller turn.
    latency_ms: float | None = None
    # audio: what the caller's speech-to-text heard of this agent turn (`text` is what the agent
    # says it said); their difference is the word error rate.
    heard: str | None = None

    def line(self) -> str:
        if self.kind in ("caller", "agent"):
            took = f"  ({self.latency_ms:.0f} ms)" if self.latency_ms is not None else ""
            heard = f"  [heard: {self.heard}]" if self.heard is not None else ""
            return f"{self.kind}: {self.text}{took}{heard}"
        if self.kind == "tool_call":
            return f"  [tool {self.name}({self.arguments})]"
        if self.kind == "tool_output":
            return f"  [tool {self.name} -> {self.text}]"
        if self.kind == "handoff":
            return f"  [handed off to {self.name}]"
        return "  [the agent ended the call]"


class Conversation(BaseModel):
    events: list[Event] = []
    ended_by_agent: bool = False
    # Audio mode's caller-felt figures (latency p50/p95, interruptions, unanswered turns, ...).
    metrics: dict[str, float | int | None] = {}

    def add(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def agent_text(self) -> list[str]:
        return [e.text for e in self.of("agent") if e.text]

    def latencies(self) -> list[float]:
        return [e.latency_ms for e in self.of("agent") if e.latency_ms is not None]

    def transcript(self) -> str:
        return "\n".join(e.line() for e in self.events)


class CheckResult(BaseModel):
    expectation: str
    verdict: Verdict
    reason: str


class RunResult(BaseModel):
    run: int
    verdict: Verdict
    checks: list[CheckResult]
    transcript: list[Event]
    metrics: dict[str, float | int | None] = {}
    seconds: float
    error: str | None = None


class ScenarioResult(BaseModel):
    name: str
    file: str
    runs: list[RunResult]
    skipped: str | None = None

    @property
    def passed_runs(self) -> int:
        return sum(r.verdict == "pass" for r in self.runs)

    @property
    def pass_rate(self) -> float | None:
        return self.passed_runs / len(self.runs) if self.runs else None


class SuiteResult(BaseModel):
    suite: str
    mode: Mode
    agent: str
    version: int | None
    threshold: float
    repeat: int
    started_at: datetime
    seconds: float
    scenarios: list[ScenarioResult]
    pass_rate: float = Field(description="passed runs / runs, over every scenario that ran")
    passed: bool

    @classmethod
    def of(cls, scenarios: list[ScenarioResult], **fields: Any) -> SuiteResult:
        runs = [r for s in scenarios for r in s.runs]
        rate = sum(r.verdict == "pass" for r in runs) / len(runs) if runs else 0.0
        return cls(
            scenarios=scenarios,
            pass_rate=rate,
            passed=bool(runs) and rate >= fields["threshold"],
            **fields,
        )

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.scenarios if s.runs and s.passed_runs < len(s.runs)]

    def summary(self) -> dict[str, Any]:
        """What `POST .../versions/{n}/evals` takes."""
        return {
            "suite": self.suite,
            "mode": self.mode,
            "pass_rate": round(self.pass_rate, 4),
            "threshold": self.threshold,
            "scenarios": sum(1 for s in self.scenarios if s.runs),
            "runs": sum(len(s.runs) for s in self.scenarios),
            "failed": self.failed,
        }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def render(result: SuiteResult) -> str:
    """The readable report (Markdown): the suite's verdict, then each scenario."""
    who = result.agent if result.version is None else f"{result.agent} version {result.version}"
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [
        f"# Evaluation: {result.suite} ({result.mode}) — {verdict}",
        "",
        f"{who}: {_pct(result.pass_rate)} of runs passed, {_pct(result.threshold)} needed "
        f"({result.repeat} run(s) per scenario, {result.seconds:.1f} s, {result.started_at:%Y-%m-%d %H:%M} UTC).",
        "",
        "| scenario | pass rate | verdict of the last run |",
        "| --- | --- | --- |",
    ]
    for s in result.scenarios:
        last = s.runs[-1].verdict if s.runs else f"skipped: {s.skipped}"
        lines.append(f"| {s.name} | {_pct(s.pass_rate)} | {last} |")
    for s in result.scenarios:
        if not s.runs:
            continue
        run = s.runs[-1]
        lines += ["", f"## {s.name} — {run.verdict} ({s.file})", ""]
        if run.error:
            lines.append(f"Error: {run.error}")
        lines += [f"- {c.verdict}: {c.expectation} — {c.reason}" for c in run.checks]
        if run.metrics:
            shown = ", ".join(
                f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in run.metrics.items()
            )
            lines += ["", f"Figures: {shown}"]
        transcript = "\n".join(Event.model_validate(e).line() for e in run.transcript)
        lines += ["", "```", transcript or "(nothing was said)", "```"]
    return "\n".join(lines) + "\n"


def write(result: SuiteResult, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    report_path = out_dir / "report.md"
    json_path.write_text(result.model_dump_json(indent=2))
    report_path.write_text(render(result))
    return json_path, report_path
