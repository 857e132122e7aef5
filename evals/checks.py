"""The verdict on each expectation: deterministic checks first, the LLM judge for intents."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from evals.results import CheckResult, Conversation, Verdict
from evals.scenario import Expectation, Mode

Judge = Callable[[str, Conversation], Awaitable[CheckResult]]
# What an audio run cannot see: the agent's tool calls and handoffs happen inside the worker.
_NOT_HEARD = ("calls_tool", "hands_off")


def _subset(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(k in actual and actual[k] == v for k, v in expected.items())


def _specialist(name: str | None) -> str:
    return (name or "").removeprefix("specialist_")


def check(exp: Expectation, conv: Conversation, mode: Mode) -> CheckResult | None:
    """The deterministic verdict, or None for a judged intent."""
    said = conv.agent_text()
    result: tuple[Verdict, str]
    if mode == "audio" and exp.kind in _NOT_HEARD:
        result = ("skipped", "not observable in audio; the text run checks it")
    elif exp.says is not None:
        hit = next((s for s in said if exp.says.casefold() in s.casefold()), None)
        result = ("pass", f"said: {hit!r}") if hit else ("fail", "the agent never said it")
    elif exp.says_regex is not None:
        pattern = re.compile(exp.says_regex, re.I)
        hit = next((s for s in said if pattern.search(s)), None)
        result = ("pass", f"said: {hit!r}") if hit else ("fail", "nothing the agent said matched")
    elif exp.calls_tool is not None:
        want = exp.calls_tool
        calls = conv.of("tool_call")
        named = [c for c in calls if c.name == want.name]
        if any(_subset(want.arguments, c.arguments) for c in named):
            result = ("pass", f"called {want.name}")
        elif named:
            result = ("fail", f"called {want.name} with {[c.arguments for c in named]}")
        else:
            made = sorted({c.name or "" for c in calls}) or "none"
            result = ("fail", f"never called {want.name} (tools called: {made})")
    elif exp.hands_off is not None:
        to = [_specialist(e.name) for e in conv.of("handoff")]
        ok = _specialist(exp.hands_off) in to
        result = ("pass", f"handed off to {to}") if ok else ("fail", f"handoffs: {to or 'none'}")
    elif exp.ends_call is not None:
        ok = conv.ended_by_agent
        result = (
            ("pass", "the agent ended the call")
            if ok
            else ("fail", "the call was not ended by the agent")
        )
    elif exp.within_ms is not None:
        took = conv.latencies()
        if not took:
            result = ("fail", "the agent never answered a caller's turn")
        else:
            worst = max(took)
            verdict: Verdict = "pass" if worst <= exp.within_ms else "fail"
            result = (verdict, f"slowest answer {worst:.0f} ms of {len(took)}")
    else:
        return None
    return CheckResult(expectation=exp.describe(), verdict=result[0], reason=result[1])


async def verdicts(
    expectations: list[Expectation], conv: Conversation, mode: Mode, judge: Judge | None
) -> list[CheckResult]:
    out = []
    for exp in expectations:
        found = check(exp, conv, mode)
        if found is None:
            assert exp.judge is not None
            if judge is None:
                found = CheckResult(
                    expectation=exp.describe(), verdict="unsure", reason="no judge model configured"
                )
            else:
                found = await judge(exp.judge, conv)
        out.append(found)
    return out


def overall(checks: list[CheckResult]) -> Verdict:
    """A run fails on any failed check; is unsure on any unsure one; otherwise passes."""
    seen = {c.verdict for c in checks}
    if "fail" in seen:
        return "fail"
    if "unsure" in seen:
        return "unsure"
    return "pass"
