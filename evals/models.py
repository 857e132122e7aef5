"""The simulated caller and the judge: LLMs through the OpenAI-compatible chat API, each with its
own model (`voice.realtime.evals`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

from evals.results import CheckResult, Conversation
from evals.scenario import Scenario

# The first line of each prompt; the deterministic test model server recognises them.
CALLER_HEAD = "You are role-playing a caller who phones a voice agent, to test the agent."
JUDGE_HEAD = "You are judging a conversation between a caller and a voice agent."
END = "[END]"
GOAL = "Your goal: "
INTENT = "Intent: "

_BEHAVIOUR = {
    "interrupts": "You are impatient: you cut in as soon as you know what the agent means.",
    "terse": "You answer in as few words as you can.",
    "changes_mind": "Halfway through you change your mind about what you want, once.",
    "silent": "You say nothing.",
}


def caller_prompt(scenario: Scenario) -> str:
    persona = scenario.persona
    how = " ".join(_BEHAVIOUR[b] for b in persona.behaviour) or "You are polite and clear."
    return "\n".join(
        [
            CALLER_HEAD,
            f"{GOAL}{persona.wants or 'none in particular; answer what you are asked'}",
            f"How you behave: {how}",
            "Reply with only the words you say next, one or two short spoken sentences. "
            f"When your goal is met or the agent has said goodbye, reply exactly {END}.",
        ]
    )


@dataclass
class SimulatedCaller:
    """Says the scenario's lines first, word for word, then improvises with its model until its
    goal is met (`[END]`) or the turns run out."""

    scenario: Scenario
    client: AsyncOpenAI | None
    model: str
    _scripted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._scripted = list(self.scenario.lines)

    async def next_line(self, conversation: Conversation) -> str | None:
        """The caller's next words, or None when it has nothing more to say."""
        if self.scenario.silent:
            return None
        if self._scripted:
            return self._scripted.pop(0)
        if not self.scenario.persona.wants or self.client is None:
            return None
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": caller_prompt(self.scenario)}
        ]
        for e in conversation.events:
            # In audio the caller knows only what it heard of the agent.
            text = e.heard if e.heard is not None else e.text
            if e.kind in ("caller", "agent") and text:
                # From the caller's side the agent is the other party ("user").
                messages.append(
                    {"role": "assistant" if e.kind == "caller" else "user", "content": text}
                )
        if len(messages) == 1:
            messages.append(
                {"role": "user", "content": "(The agent has picked up and says nothing.)"}
            )
        resp = await self.client.chat.completions.create(model=self.model, messages=messages)  # type: ignore[arg-type]
        text = (resp.choices[0].message.content or "").strip()
        if not text or END in text:
            return None
        return text


def judge_prompt(intent: str, conversation: Conversation) -> str:
    return "\n".join(
        [
            JUDGE_HEAD,
            f"{INTENT}{intent}",
            "",
            "Transcript:",
            conversation.transcript() or "(nothing was said)",
            "",
            "Does the agent's side of this conversation fulfil the intent? Answer with one JSON "
            'object and nothing else: {"verdict": "pass" | "fail" | "unsure", "reason": "<one '
            'sentence>"}. Say "unsure" when the transcript does not let you decide.',
        ]
    )


_JSON = re.compile(r"\{.*\}", re.S)


async def judge_intent(
    client: AsyncOpenAI, model: str, intent: str, conversation: Conversation
) -> CheckResult:
    """The judge's verdict on `intent`; an answer it cannot read is "unsure", with the answer."""
    expectation = f"judge: {intent}"
    resp = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": judge_prompt(intent, conversation)}],
        temperature=0,
    )
    answer = (resp.choices[0].message.content or "").strip()
    found = _JSON.search(answer)
    try:
        data = json.loads(found.group(0)) if found else {}
    except json.JSONDecodeError:
        data = {}
    verdict = data.get("verdict") if isinstance(data, dict) else None
    if verdict not in ("pass", "fail", "unsure"):
        return CheckResult(
            expectation=expectation,
            verdict="unsure",
            reason=f"the judge's answer was not a verdict: {answer[:200]!r}",
        )
    return CheckResult(expectation=expectation, verdict=verdict, reason=str(data.get("reason", "")))
