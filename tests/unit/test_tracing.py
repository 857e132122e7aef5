"""Traces: the content filter, the tracing config, the trace context across the dispatch, and the
SigV4 signing of exports to X-Ray."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
import yaml
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from functions import tracing as api_tracing
from functions.trace_context import api_sampler, parent_context
from infra.local.paths import CONFIG_FILE
from voice.config import ConfigError, parse_config
from voice.config.schema import TracingSettings
from voice.metadata import DispatchMetadata
from voice.tracing import ContentFilter, SigV4Session, build_provider
from worker.tracing import JOB_ROOT, CallSampler, remote_context

SAID = "my card number is four four four four"
REPLY = "I have read your card number back to you"


def _record_a_turn(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "user_turn",
        attributes={
            "lk.pii.user_transcript": SAID,
            "lk.transcript_confidence": 0.9,
            "lk.end_of_turn_delay": 0.41,
        },
    ):
        with tracer.start_as_current_span(
            "llm_node",
            attributes={
                "gen_ai.input.messages": json.dumps([{"role": "user", "content": SAID}]),
                "gen_ai.output.messages": REPLY,
                "gen_ai.prompt.variable.name": "Ada",
                "gen_ai.request.model": "gpt-4o",
                "lk.response.ttft": 0.2,
            },
        ) as span:
            span.add_event("gen_ai.user.message", {"content": SAID})
            span.add_event("lk.note", {"lk.pii.text": SAID, "lk.kept": 1})
        with tracer.start_as_current_span("function_tool") as tool:
            tool.record_exception(ValueError(f"no card like {SAID}"))
            tool.set_status(trace.Status(trace.StatusCode.ERROR, f"failed on {SAID}"))


def _memory_provider(*processors: object) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    for processor in processors:
        provider.add_span_processor(processor)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def _everything_exported(memory: InMemorySpanExporter) -> str:
    parts = []
    for span in memory.get_finished_spans():
        parts.append(json.dumps(dict(span.attributes or {})))
        parts += [json.dumps(dict(e.attributes or {})) for e in span.events]
        parts.append(str(span.status.description))
    return "\n".join(parts)


def test_content_filter_drops_what_was_said_and_keeps_latencies_and_models() -> None:
    provider, memory = _memory_provider(ContentFilter())
    _record_a_turn(provider)

    exported = _everything_exported(memory)
    assert SAID not in exported
    assert REPLY not in exported
    assert "Ada" not in exported
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert spans["user_turn"].attributes == {
        "lk.transcript_confidence": 0.9,
        "lk.end_of_turn_delay": 0.41,
    }
    assert spans["llm_node"].attributes == {
        "gen_ai.request.model": "gpt-4o",
        "lk.response.ttft": 0.2,
    }
    assert [e.name for e in spans["llm_node"].events] == ["lk.note"]
    assert dict(spans["llm_node"].events[0].attributes or {}) == {"lk.kept": 1}
    # The exception's type still tells what failed.
    assert spans["function_tool"].events[0].attributes["exception.type"] == "ValueError"


def test_without_the_filter_the_same_spans_carry_the_transcript() -> None:
    # The test above can fail: the recorded spans really hold the words.
    provider, memory = _memory_provider()
    _record_a_turn(provider)
    assert SAID in _everything_exported(memory)


def test_include_content_keeps_the_transcript_and_the_default_drops_it() -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}
    for include, expect_words in ((False, False), (True, True)):
        memory = InMemorySpanExporter()
        settings = TracingSettings(enabled=True, include_content=include)
        provider = build_provider(settings, "test", ALWAYS_ON, environ=env, exporter=memory)
        assert provider is not None
        _record_a_turn(provider)
        provider.force_flush()
        assert (SAID in _everything_exported(memory)) is expect_words
        provider.shutdown()


def test_the_endpoint_comes_from_the_config_then_the_environment() -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    on = TracingSettings(enabled=True)
    assert on.export_endpoint(env) == "http://collector:4318/v1/traces"
    configured = on.model_copy(update={"endpoint": "https://x/v1/traces"})
    assert configured.export_endpoint(env) == "https://x/v1/traces"
    assert on.export_endpoint({}) is None
    assert TracingSettings(enabled=False).export_endpoint(env) is None
    assert build_provider(on, "test", ALWAYS_ON, environ={}) is None


def _config_with(tracing: dict[str, object]) -> str:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["observability"] = {"tracing": tracing}
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("tracing", "expected"),
    [
        (
            {"sample_rate": 1.5},
            "voice.realtime.observability.tracing.sample_rate: must be <= 1.0 (got 1.5)",
        ),
        (
            {"endpoint": "collector:4318"},
            "voice.realtime.observability.tracing.endpoint: must be an http:// or https:// URL",
        ),
        (
            {"include_transcripts": True},
            "voice.realtime.observability.tracing.include_transcripts: is not a known key",
        ),
    ],
)
def test_a_bad_tracing_config_names_the_key(tracing: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_config_with(tracing), "config/voice_config.yaml", env={})
    assert expected in str(err.value)
    assert "config/voice_config.yaml" in str(err.value)


def test_tracing_is_off_and_content_withheld_unless_configured() -> None:
    defaults = parse_config("voice: {}", "empty.yaml", env={})
    tracing = defaults.voice.realtime.observability.tracing
    assert (tracing.enabled, tracing.include_content, tracing.sample_rate) == (False, False, 1.0)


# -- the trace context across the dispatch -------------------------------------------------------


@pytest.fixture
def api_tracer() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    settings = TracingSettings(enabled=True)
    provider = build_provider(settings, "api", api_sampler(1.0), exporter=memory)
    assert provider is not None
    saved = (api_tracing._BUILT.settings, api_tracing._BUILT.provider, api_tracing._BUILT.tracer)
    api_tracing._BUILT.settings = settings
    api_tracing._BUILT.provider = provider
    api_tracing._BUILT.tracer = provider.get_tracer("api")
    yield memory
    provider.shutdown()
    api_tracing._BUILT.settings, api_tracing._BUILT.provider, api_tracing._BUILT.tracer = saved


def _dispatch() -> DispatchMetadata:
    return DispatchMetadata(session_id="s-1", agent_type="single_agent", initial_greeting=True)


def test_the_dispatch_carries_the_create_s_trace_to_the_worker(
    api_tracer: InMemorySpanExporter,
) -> None:
    tracer = api_tracing._BUILT.tracer
    assert tracer is not None
    with tracer.start_as_current_span("POST /session") as request:
        dispatch = api_tracing.traced_dispatch(_dispatch())
    api_tracing.flush()

    assert dispatch.traceparent is not None
    assert json.loads(dispatch.to_json())["traceparent"] == dispatch.traceparent
    spans = {s.name: s for s in api_tracer.get_finished_spans()}
    assert spans["dispatch"].parent is not None
    assert spans["dispatch"].parent.span_id == request.get_span_context().span_id

    # The worker's `call` span continues it: same trace, the dispatch span as parent.
    parent = trace.get_current_span(remote_context(dispatch.to_json())).get_span_context()
    assert parent.trace_id == request.get_span_context().trace_id
    assert parent.span_id == spans["dispatch"].context.span_id
    assert parent.trace_flags.sampled


def test_an_untraced_create_leaves_the_dispatch_alone() -> None:
    assert api_tracing.traced_dispatch(_dispatch()).traceparent is None
    assert "traceparent" not in json.loads(_dispatch().to_json())


def test_a_create_inside_a_lambda_continues_its_x_ray_trace() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    ctx = parent_context({}, {"_X_AMZN_TRACE_ID": header})
    span_context = trace.get_current_span(ctx).get_span_context()
    assert f"{span_context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{span_context.span_id:016x}" == "53995c3f42cd8ad8"
    # A caller's own traceparent wins over the Lambda's.
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ctx = parent_context({"traceparent": theirs}, {"_X_AMZN_TRACE_ID": header})
    trace_id = trace.get_current_span(ctx).get_span_context().trace_id
    assert f"{trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"


def test_the_api_decides_sampling_even_under_a_sampled_parent() -> None:
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = parent_context({"traceparent": theirs}, {})
    assert api_sampler(1.0).should_sample(parent, 1, "x").decision.is_sampled()
    assert not api_sampler(0.0).should_sample(parent, 1, "x").decision.is_sampled()


def test_the_worker_follows_the_dispatch_and_skips_the_library_s_job_root() -> None:
    sampler = CallSampler(0.0)
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    unsampled = sampled[:-2] + "00"
    meta = {"session_id": "s", "agent_type": "single_agent", "initial_greeting": True}
    under_sampled = remote_context(json.dumps({**meta, "traceparent": sampled}))
    under_unsampled = remote_context(json.dumps({**meta, "traceparent": unsampled}))
    assert sampler.should_sample(under_sampled, 7, "call").decision.is_sampled()
    assert not sampler.should_sample(under_unsampled, 7, "call").decision.is_sampled()
    # No traceparent (an inbound phone call): a new root, at the configured rate.
    assert not sampler.should_sample(
        remote_context(json.dumps(meta)), 7, "call"
    ).decision.is_sampled()
    assert CallSampler(1.0).should_sample(otel_context.Context(), 7, "call").decision.is_sampled()
    assert not CallSampler(1.0).should_sample(None, 7, JOB_ROOT).decision.is_sampled()
    for broken in ("", "not json", "[]", json.dumps({**meta, "traceparent": 5})):
        assert not trace.get_current_span(remote_context(broken)).get_span_context().is_valid


# -- exports to X-Ray ----------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.seen.append(dict(self.headers.items()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_exports_to_x_ray_are_signed_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/traces"
        SigV4Session("eu-west-1").post(
            url, data=b"\x0a\x00", headers={"Content-Type": "application/x-protobuf"}
        )
    finally:
        server.shutdown()
    auth = _Recorder.seen[-1]["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/xray/aws4_request" in auth
    assert "content-type" in auth.split("SignedHeaders=")[1]
    assert "X-Amz-Date" in _Recorder.seen[-1]
