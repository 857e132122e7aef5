"""Runs a suite against one agent version: each scenario `repeat` times, judged, reported."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openai import AsyncOpenAI

from evals.checks import overall, verdicts
from evals.control_plane import ControlPlane
from evals.models import SimulatedCaller, judge_intent
from evals.results import CheckResult, Conversation, RunResult, ScenarioResult, SuiteResult
from evals.scenario import Mode, Scenario, load_suite
from evals.text import run_text
from voice.config import load_config
from voice.config.schema import EvalSettings, VoiceConfig

DEFAULT_AGENT = "default"


@dataclass(frozen=True)
class RunOptions:
    suite: Path
    agent: str = DEFAULT_AGENT
    version: int | None = None
    mode: Mode = "text"
    api: str | None = None
    api_key: str | None = None
    repeat: int = 1
    config_uri: str | None = None
    caller_model: str | None = None
    judge_model: str | None = None


@dataclass(frozen=True)
class Target:
    """The agent under test: the config file's (`agent_id` None) or a version of an agent."""

    agent_id: str | None
    version: int | None
    config: VoiceConfig


class UsageError(ValueError):
    """Options that cannot work together; the message says what to pass."""


def models_client(settings: EvalSettings) -> AsyncOpenAI:
    base_url = settings.base_url or os.environ.get("OPENAI_BASE_URL") or None
    # A local OpenAI-compatible server may need no key; the SDK insists on one.
    api_key = os.environ.get("OPENAI_API_KEY") or "unused"
    return AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=1)


def check_options(opts: RunOptions) -> None:
    if opts.repeat < 1:
        raise UsageError("--repeat: must be 1 or more")
    if opts.agent != DEFAULT_AGENT and opts.version is None:
        raise UsageError(f"--version: say which version of {opts.agent} to evaluate")
    if opts.agent != DEFAULT_AGENT and not opts.api:
        raise UsageError("--api: reading an agent's version needs the control plane's URL")
    if opts.mode == "audio" and not opts.api:
        raise UsageError("--api: audio mode creates a real session through the control plane")
    if opts.api and not opts.api_key:
        raise UsageError("--api needs an API key: set EVAL_API_KEY (or pass --api-key)")


class Runner:
    def __init__(self, opts: RunOptions, api: ControlPlane | None) -> None:
        check_options(opts)
        self.opts = opts
        self.api = api
        self.base = load_config(opts.config_uri).config
        self.settings = self.base.realtime.evals
        self.models = models_client(self.settings)
        self.caller_model = opts.caller_model or self.settings.caller_model
        self.judge_model = opts.judge_model or self.settings.judge_model

    async def target(self) -> Target:
        if self.opts.agent == DEFAULT_AGENT:
            return Target(agent_id=None, version=None, config=self.base)
        assert self.api is not None and self.opts.version is not None
        config = await self.api.version_config(self.opts.agent, self.opts.version, self.base)
        return Target(agent_id=self.opts.agent, version=self.opts.version, config=config)

    async def _judge(self, intent: str, conv: Conversation) -> CheckResult:
        return await judge_intent(self.models, self.judge_model, intent, conv)

    async def conversation(self, scenario: Scenario, target: Target) -> Conversation:
        caller = SimulatedCaller(scenario, self.models, self.caller_model)
        if self.opts.mode == "text":
            return await run_text(
                scenario, target.config, caller, agent_id=target.agent_id, version=target.version
            )
        from evals.audio import run_audio  # LiveKit's room client only when audio runs

        assert self.api is not None
        return await run_audio(scenario, target, caller, self.api, self.models)

    async def run_once(self, scenario: Scenario, target: Target, n: int) -> RunResult:
        started = time.monotonic()
        try:
            conv = await self.conversation(scenario, target)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            check = CheckResult(expectation="the conversation ran", verdict="fail", reason=why)
            return RunResult(
                run=n, verdict="fail", checks=[check], transcript=[], seconds=0.0, error=why
            )
        checks = await verdicts(scenario.expect, conv, self.opts.mode, self._judge)
        return RunResult(
            run=n,
            verdict=overall(checks),
            checks=checks,
            transcript=conv.events,
            metrics=conv.metrics,
            seconds=round(time.monotonic() - started, 2),
        )

    async def run(self) -> SuiteResult:
        suite = load_suite(self.opts.suite)
        target = await self.target()
        started_at, started = datetime.now(UTC), time.monotonic()
        results = []
        for path, scenario in suite.scenarios:
            result = ScenarioResult(name=scenario.name, file=str(path), runs=[])
            if self.opts.mode not in scenario.modes:
                result.skipped = f"runs in {', '.join(scenario.modes)} only"
            else:
                for n in range(1, self.opts.repeat + 1):
                    result.runs.append(await self.run_once(scenario, target, n))
            results.append(result)
        return SuiteResult.of(
            results,
            suite=suite.settings.name,
            mode=self.opts.mode,
            agent=self.opts.agent,
            version=self.opts.version,
            threshold=suite.settings.threshold,
            repeat=self.opts.repeat,
            started_at=started_at,
            seconds=round(time.monotonic() - started, 2),
        )
