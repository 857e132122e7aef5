"""A deterministic LLM for text-mode `AgentSession` tests: scripted replies and tool calls."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIConnectionError, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions


@dataclass(frozen=True)
class Rule:
    """When `match` (lower case) is in the latest message, reply `text` or call `tool`."""

    match: str
    text: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


class FakeLLM(llm.LLM):
    """Matches rules against the latest chat message; after a tool result, reads it back."""

    def __init__(self, rules: list[Rule], *, default: str = "I see.", fail_times: int = 0) -> None:
        super().__init__()
        self.rules = rules
        self.default = default
        self.calls: list[llm.ChatContext] = []
        # The first `fail_times` requests fail, as a provider outage would.
        self.fail_times = fail_times

    @property
    def model(self) -> str:
        return "fake-llm"

    @property
    def provider(self) -> str:
        return "fake"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: Any = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
        extra_kwargs: Any = NOT_GIVEN,
    ) -> llm.LLMStream:
        self.calls.append(chat_ctx.copy())
        return _FakeStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    def respond(self, chat_ctx: llm.ChatContext) -> tuple[str | None, Rule | None]:
        items = chat_ctx.items
        last = items[-1] if items else None
        if last is not None and last.type == "function_call_output":
            return f"Here is what I found: {last.output}", None
        haystack = ""
        for item in reversed(items):
            if item.type == "message":
                haystack = (item.text_content or "").lower()
                break
        for rule in self.rules:
            if rule.match in haystack:
                return (rule.text, rule) if rule.tool else (rule.text, None)
        return self.default, None


class _FakeStream(llm.LLMStream):
    async def _run(self) -> None:
        fake: FakeLLM = self._llm  # type: ignore[assignment]
        if fake.fail_times > 0:
            fake.fail_times -= 1
            raise APIConnectionError("fake provider is down", retryable=False)
        text, rule = fake.respond(self._chat_ctx)
        request_id = f"fake-{len(fake.calls)}"
        if rule is not None and rule.tool:
            call = llm.FunctionToolCall(
                name=rule.tool,
                arguments=json.dumps(rule.arguments),
                call_id=f"call_{len(fake.calls)}",
            )
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call])
                )
            )
        elif text:
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == len(words) - 1 else word + " "
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece)
                    )
                )
        prompt = sum(len((i.text_content or "").split()) for i in self._chat_ctx.messages())
        completion = len((text or "").split()) or 1
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=request_id,
                usage=llm.CompletionUsage(
                    completion_tokens=completion,
                    prompt_tokens=prompt,
                    total_tokens=prompt + completion,
                ),
            )
        )
