"""The worker's part of a call's trace: a `call` span under the API's dispatch, with LiveKit
Agents' own spans (agent_session, user_turn, agent_turn, llm_node, tts_node, function_tool, ...)
nested under it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from livekit.agents import JobContext, telemetry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from voice.config.schema import TracingSettings, VoiceConfig
from voice.metadata import DispatchMetadata
from voice.tracing import build_provider
from worker.pipeline import resolve_profile

SERVICE = "voice-worker"
CALL_SPAN = "call"
# The library roots each job's spans at `job_entrypoint`, started before the job's metadata can
# be read, so it can never sit under the API's dispatch. The call is traced from our `call` span
# instead, and the job-level root (with its shutdown bookkeeping) is not recorded.
JOB_ROOT = "job_entrypoint"
_FLUSH_MILLIS = 5000


class CallSampler(Sampler):
    """Follows the API's decision for a dispatched call; samples new roots at `rate`."""

    def __init__(self, rate: float) -> None:
        self._inner = ParentBased(TraceIdRatioBased(rate))

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if name == JOB_ROOT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"CallSampler({self._inner.get_description()})"


class Tracing:
    """The process's provider, rebuilt when the config's tracing section changes."""

    def __init__(self) -> None:
        self.settings: TracingSettings | None = None
        self.provider: TracerProvider | None = None

    def ensure(
        self, settings: TracingSettings, exporter: SpanExporter | None = None
    ) -> TracerProvider | None:
        if settings == self.settings and exporter is None:
            return self.provider
        old = self.provider
        self.settings = settings
        self.provider = build_provider(
            settings, SERVICE, CallSampler(settings.sample_rate), exporter=exporter
        )
        if self.provider is not None:
            telemetry.set_tracer_provider(self.provider, allow_pii=settings.include_content)
        elif old is not None:
            telemetry.set_tracer_provider(trace.NoOpTracerProvider())
        if old is not None:
            old.shutdown()
        return self.provider


TRACING = Tracing()


def remote_context(raw_metadata: str | None) -> otel_context.Context:
    """The API's dispatch span from the job's metadata; an empty context (a new trace) when
    there is none (an inbound phone call) or the metadata is unreadable."""
    try:
        data = json.loads(raw_metadata or "")
    except ValueError:
        return otel_context.Context()
    carrier = {"traceparent": data.get("traceparent")} if isinstance(data, dict) else {}
    if not isinstance(carrier.get("traceparent"), str):
        return otel_context.Context()
    return TraceContextTextMapPropagator().extract(carrier, context=otel_context.Context())


def call_attributes(config: VoiceConfig, dispatch: DispatchMetadata, ctx: JobContext) -> dict:
    """What identifies the call and which models it runs; never anything said in it."""
    openai = config.voice.providers.openai
    profile = resolve_profile(config, dispatch.voice_profile)
    attrs: dict[str, Any] = {
        "voice.session_id": dispatch.session_id,
        "voice.room": ctx.room.name,
        "voice.job_id": ctx.job.id,
        "voice.agent_type": dispatch.agent_type,
        "voice.stt.model": openai.stt.model,
        "voice.llm.model": openai.llm.model,
        "voice.tts.model": profile.model_id or openai.tts.model,
        "voice.tts.voice": profile.voice_id or openai.tts.voice,
    }
    if dispatch.agent_id is not None:
        attrs["voice.agent_id"] = dispatch.agent_id
        attrs["voice.agent_version"] = dispatch.agent_version or 0
    if dispatch.phone is not None:
        attrs["voice.phone.direction"] = dispatch.phone.direction
    return attrs


@contextlib.contextmanager
def traced_call(
    ctx: JobContext, settings: TracingSettings, attributes: Mapping[str, Any]
) -> Iterator[trace.Span]:
    """Runs the block under the call's span (current, so the session's spans nest under it);
    the span ends, and the process's spans are flushed, when the job shuts down."""
    provider = TRACING.ensure(settings)
    if provider is None:
        yield trace.INVALID_SPAN
        return
    span = provider.get_tracer("voice.worker").start_span(
        CALL_SPAN,
        context=remote_context(ctx.job.metadata),
        kind=SpanKind.CONSUMER,
        attributes=dict(attributes),
    )

    async def finish(reason: str) -> None:
        span.set_attribute("voice.end_reason", reason)
        span.end()
        # The job's process exits soon after: send what it recorded now.
        await asyncio.to_thread(provider.force_flush, _FLUSH_MILLIS)

    ctx.add_shutdown_callback(finish)
    with trace.use_span(span, end_on_exit=False):
        yield span
