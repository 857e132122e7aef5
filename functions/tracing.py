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
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voice.config import ConfigError, get_config
from voice.metadata import DispatchMetadata

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from voice.config.schema import TracingSettings

SERVICE = "voice-control-plane"
_FLUSH_MILLIS = 3000
# The creates that start a call's trace; nothing else is traced by the API.
PREFIX = "/voice/realtime"
TRACED = {("POST", f"{PREFIX}/session"), ("POST", f"{PREFIX}/call")}


class _Built:
    settings: TracingSettings | None = None
    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_BUILT = _Built()


def tracer_for(settings: TracingSettings) -> Tracer | None:
    """The tracer for these settings (rebuilt when they change); None when tracing is off."""
    if settings == _BUILT.settings:
        return _BUILT.tracer
    from functions.trace_context import api_sampler
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
    if settings.export_endpoint(os.environ) is None:
        return None  # nothing to export to: OpenTelemetry is not even imported
    return tracer_for(settings)


def flush() -> None:
    """Sends what a Lambda invocation recorded before the runtime freezes the process."""
    if _BUILT.provider is not None:
        _BUILT.provider.force_flush(_FLUSH_MILLIS)


def traced_dispatch(dispatch: DispatchMetadata) -> DispatchMetadata:
    """The dispatch with the trace context the worker continues (a `dispatch` span under the
    current create's span); unchanged when the create is not traced."""
    if _BUILT.tracer is None:
        return dispatch
    from functions.trace_context import dispatch_traceparent

    traceparent = dispatch_traceparent(_BUILT.tracer, dispatch)
    if traceparent is None:
        return dispatch
    return dispatch.model_copy(update={"traceparent": traceparent})


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
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from functions.trace_context import parent_context

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
