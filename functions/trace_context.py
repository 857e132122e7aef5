"""The OpenTelemetry side of the control plane's traces (functions/tracing.py imports this only
once a create is traced): where a create's trace comes from, and the dispatch span."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from voice.metadata import DispatchMetadata

XRAY_ENV = "_X_AMZN_TRACE_ID"
_XRAY = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16})")
_PROPAGATOR = TraceContextTextMapPropagator()


def api_sampler(rate: float) -> Sampler:
    """The share of calls traced is decided here, where the call's trace starts: a parent from
    outside (the caller's traceparent, the Lambda's X-Ray header) gives the trace id, not the
    decision. Spans inside a create follow it."""
    ratio = TraceIdRatioBased(rate)
    return ParentBased(ratio, remote_parent_sampled=ratio, remote_parent_not_sampled=ratio)


def xray_parent(header: str | None) -> otel_context.Context | None:
    """The Lambda invocation's X-Ray trace (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;...`) as a
    remote parent: X-Ray's trace id is the W3C one with its dashes removed."""
    match = _XRAY.search(header or "")
    if match is None:
        return None
    epoch, rest, parent = match.groups()
    span_context = trace.SpanContext(
        trace_id=int(epoch + rest, 16),
        span_id=int(parent, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


def parent_context(headers: Mapping[str, str], environ: Mapping[str, str]) -> otel_context.Context:
    """The caller's `traceparent` if it sent one, else the Lambda's X-Ray trace, else none."""
    if "traceparent" in headers:
        extracted = _PROPAGATOR.extract(dict(headers), context=otel_context.Context())
        if trace.get_current_span(extracted).get_span_context().is_valid:
            return extracted
    return xray_parent(environ.get(XRAY_ENV)) or otel_context.Context()


def dispatch_traceparent(tracer: Tracer, dispatch: DispatchMetadata) -> str | None:
    """A `dispatch` span under the current create's span, and its W3C context for the worker;
    None when no create span is current."""
    current = trace.get_current_span()
    if not current.get_span_context().is_valid:
        return None
    current.set_attribute("voice.session_id", dispatch.session_id)
    attributes: dict[str, Any] = {
        "voice.session_id": dispatch.session_id,
        "voice.agent_type": dispatch.agent_type,
    }
    if dispatch.agent_id is not None:
        attributes["voice.agent_id"] = dispatch.agent_id
        attributes["voice.agent_version"] = dispatch.agent_version or 0
    if dispatch.phone is not None:
        attributes["voice.phone.direction"] = dispatch.phone.direction
    # A message handed on: the worker's `call` span, later and elsewhere, is its child.
    span = tracer.start_span("dispatch", kind=SpanKind.PRODUCER, attributes=attributes)
    span.end()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")
