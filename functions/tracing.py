"""The control plane's part of a call's trace: a span for each create (`POST /session`,
`POST /call`) and a `dispatch` span whose W3C context rides in the dispatch metadata.

OpenTelemetry rather than Powertools Tracer: the same spans, exporter and content rules as the
worker, so one trace holds the whole call in the local Jaeger and in X-Ray alike. In Lambda
(`Tracing: Active`) the create's span continues the invocation's X-Ray trace, so the function's
own segment, the API's spans and the worker's spans are one X-Ray trace. The SDK is imported on
the first traced create only, and only when tracing is on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voice.config import ConfigError, get_config
from voice.metadata import DispatchMetadata

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from voice.config.schema import TracingSettings

SERVICE = "voice-control-plane"
XRAY_ENV = "_X_AMZN_TRACE_ID"
_XRAY = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16})")
_FLUSH_MILLIS = 3000
_PROPAGATOR = TraceContextTextMapPropagator()


class _Built:
    settings: TracingSettings | None = None
    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_BUILT = _Built()


def api_sampler(rate: float) -> Any:
    """The share of calls traced is decided here, where the call's trace starts: a parent from
    outside (the caller's traceparent, the Lambda's X-Ray header) gives the trace id, not the
    decision. Spans inside a create follow it."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = TraceIdRatioBased(rate)
    return ParentBased(ratio, remote_parent_sampled=ratio, remote_parent_not_sampled=ratio)


def tracer_for(settings: TracingSettings) -> Tracer | None:
    """The tracer for these settings (rebuilt when they change); None when tracing is off."""
    if settings == _BUILT.settings:
        return _BUILT.tracer
    from voice.tracing import build_provider

    old = _BUILT.provider
    _BUILT.settings = settings
    _BUILT.provider = build_provider(settings, SERVICE, api_sampler(settings.sample_rate))
    _BUILT.tracer = None if _BUILT.provider is None else _BUILT.provider.get_tracer(SERVICE)
    if old is not None:
        old.shutdown()
    return _BUILT.tracer


def current_tracer() -> Tracer | None:
    try:
        settings = get_config().config.voice.realtime.observability.tracing
    except ConfigError:
        return None  # the create itself reports the broken config
    if not settings.enabled:
        return None
    return tracer_for(settings)


def flush() -> None:
    """Sends what a Lambda invocation recorded before the runtime freezes the process."""
    if _BUILT.provider is not None:
        _BUILT.provider.force_flush(_FLUSH_MILLIS)


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


def traced_dispatch(dispatch: DispatchMetadata) -> DispatchMetadata:
    """The dispatch with the trace context the worker continues: a `dispatch` span under the
    current create's span. Unchanged when the create is not traced."""
    current = trace.get_current_span()
    tracer = _BUILT.tracer
    if tracer is None or not current.get_span_context().is_valid:
        return dispatch
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
    return dispatch.model_copy(update={"traceparent": carrier.get("traceparent")})


# The creates that start a call's trace; nothing else is traced by the API.
PREFIX = "/voice/realtime"
TRACED = {("POST", f"{PREFIX}/session"), ("POST", f"{PREFIX}/call")}


class TraceCreates:
    """ASGI middleware: a SERVER span around each create, the call's root."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("method"), scope.get("path"))
        if scope["type"] != "http" or key not in TRACED:
            await self.app(scope, receive, send)
            return
        tracer = current_tracer()
        if tracer is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = key
        route = str(path).removeprefix(PREFIX)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracer.start_as_current_span(
            f"{method} {route}",
            context=parent_context(headers, os.environ),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": str(method), "http.route": route},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
