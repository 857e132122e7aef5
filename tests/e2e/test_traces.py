"""A real call's trace, read back from the local Jaeger: one trace from the API's create through
the dispatch to the worker's session and turns, with latencies and models and without a word
of what was said."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from infra.local.jaeger import Jaeger, JaegerOptions, Span, call_trace, find_jaeger, spans_of
from infra.local.stack import LocalStack
from tests.support.caller import Caller, speech
from tests.support.config_files import config_with
from tests.support.fake_openai import ANSWER, GREETING, QUESTION, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, stack_with_fake_models
from tests.support.tools import missing_tool
from voice.tracing import ENDPOINT_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    if find_jaeger() is None:
        missing_tool("no jaeger binary: run `make jaeger` (or put one on PATH)")
    with Jaeger(JaegerOptions.on_free_ports(tmp_path_factory.mktemp("jaeger"))) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, jaeger: Jaeger, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    run_dir = tmp_path_factory.mktemp("stack")
    tracing = {"enabled": True, "sample_rate": 1.0, "include_content": False}
    config = config_with(run_dir / "voice.yaml", {"observability": {"tracing": tracing}})
    with stack_with_fake_models(
        run_dir,
        fake_openai,
        config_uri=str(config),
        extra_env={ENDPOINT_ENV: jaeger.opts.otlp_url},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def call_spans(stack: LocalStack, jaeger: Jaeger) -> list[Span]:
    """One whole call (greeting, one question and its answer, hang-up), then its trace."""
    return asyncio.run(_one_call(stack, jaeger))


async def _one_call(stack: LocalStack, jaeger: Jaeger) -> list[Span]:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(
        base_url=stack.api_url + "/voice/realtime", headers=headers, timeout=30
    ) as api:
        resp = await api.post(
            "/session", json={"agent_type": "single_agent", "initial_greeting": True}
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        session_id = created["session_id"]
        caller = Caller()
        joined_at = time.monotonic()
        await caller.join(created["url"], created["token"])
        try:
            await poll_session(api, session_id, lambda s: s["agent_joined"], WAIT, "the agent")
            await caller.wait_for_voice(after=joined_at, timeout=WAIT)
            await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
            spoke_at = await caller.say(speech(QUESTION))
            await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
            await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
        finally:
            await caller.leave()
        await poll_session(api, session_id, lambda s: s["status"] == "ended", WAIT, "the end")
    return await _trace_when_complete(stack, jaeger, session_id)


async def _trace_when_complete(stack: LocalStack, jaeger: Jaeger, session_id: str) -> list[Span]:
    """The call's spans once the worker has flushed its `call` span (at the job's end)."""
    deadline = time.monotonic() + WAIT
    spans: list[Span] = []
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(call_trace, jaeger.opts.query_url, session_id)
        spans = spans_of(found) if found else []
        if any(s.name == "call" for s in spans) and any(s.name == "agent_turn" for s in spans):
            return spans
        await asyncio.sleep(0.5)
    names = sorted({s.name for s in spans})
    raise AssertionError(
        f"no complete trace for {session_id} in Jaeger after {WAIT:.0f} s; spans: {names}\n"
        f"{log_tail(stack, 'worker', 'api')}"
    )


def _one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name}: {[s.name for s in spans]}"
    return found[0]


def _ancestors(span: Span, by_id: dict[str, Span]) -> list[str]:
    names = []
    parent = by_id.get(span.parent_id or "")
    while parent is not None:
        names.append(parent.name)
        parent = by_id.get(parent.parent_id or "")
    return names


def test_one_trace_links_the_create_the_dispatch_and_the_call(call_spans: list[Span]) -> None:
    request = _one(call_spans, "POST /session")
    dispatch = _one(call_spans, "dispatch")
    call = _one(call_spans, "call")
    session = _one(call_spans, "agent_session")

    assert {s.trace_id for s in call_spans} == {request.trace_id}
    assert request.service == "voice-control-plane" and request.parent_id is None
    assert request.attributes["http.response.status_code"] == 201
    assert dispatch.parent_id == request.span_id
    assert call.service == "voice-worker"
    assert call.parent_id == dispatch.span_id
    assert session.parent_id == call.span_id
    session_id = call.attributes["voice.session_id"]
    assert request.attributes["voice.session_id"] == dispatch.attributes["voice.session_id"]
    assert dispatch.attributes["voice.session_id"] == session_id
    # The library's job root is not recorded: the call span is the worker's top.
    assert not [s for s in call_spans if s.name == "job_entrypoint"]


def test_the_call_names_its_models_and_each_turn_its_latencies(call_spans: list[Span]) -> None:
    by_id = {s.span_id: s for s in call_spans}
    call = _one(call_spans, "call")
    for key in ("voice.stt.model", "voice.llm.model", "voice.tts.model", "voice.tts.voice"):
        assert call.attributes.get(key), key

    user_turns = [s for s in call_spans if s.name == "user_turn"]
    agent_turns = [s for s in call_spans if s.name == "agent_turn"]
    assert user_turns and len(agent_turns) >= 2  # the greeting and the answer
    for span in user_turns + agent_turns:
        assert "agent_session" in _ancestors(span, by_id), span.name
    # The answer to the caller's question: end of speech to first audio out, and its stages.
    answered = [s for s in agent_turns if "lk.e2e_latency" in s.attributes]
    assert answered, [s.attributes for s in agent_turns]
    for turn in answered:
        assert 0 < float(turn.attributes["lk.e2e_latency"]) < WAIT
    for name, latency in (("llm_node", "lk.response.ttft"), ("tts_node", "lk.response.ttfb")):
        nodes = [s for s in call_spans if s.name == name]
        assert nodes, name
        assert all("agent_turn" in _ancestors(s, by_id) for s in nodes), name
        assert any(latency in s.attributes for s in nodes), (name, latency)
    models = {s.attributes.get("gen_ai.request.model") for s in call_spans}
    assert call.attributes["voice.llm.model"] in models


def test_no_span_carries_what_was_said(call_spans: list[Span]) -> None:
    everything = json.dumps([s.attributes for s in call_spans])
    for words in (QUESTION, ANSWER, GREETING, "opening hours", "nine to five"):
        assert words.lower() not in everything.lower(), words
    keys = {k for s in call_spans for k in s.attributes}
    assert not [k for k in keys if "pii" in k.split(".")]
    assert "gen_ai.input.messages" not in keys


def test_a_trace_is_found_from_the_session_id_on_the_command_line(
    call_spans: list[Span], jaeger: Jaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.local.jaeger import main

    session_id = _one(call_spans, "call").attributes["voice.session_id"]
    assert main([session_id, jaeger.opts.query_url]) == 0
    out = capsys.readouterr().out
    assert call_spans[0].trace_id in out
    assert "agent_session [voice-worker]" in out
