"""OpenTelemetry traces for both planes: the provider, its content filter, and the OTLP exporter.

A call's trace starts at the API's create and goes on in the worker; the dispatch metadata
carries it across as a W3C `traceparent`. Spans go out over OTLP/HTTP: to the local Jaeger in
`make dev`, to X-Ray's OTLP endpoint (signed with SigV4) in AWS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Status, StatusCode

from voice.config.schema import TRACES_ENDPOINT_ENV, TracingSettings

ENDPOINT_ENV = TRACES_ENDPOINT_ENV
# X-Ray's OTLP traces endpoint; requests to it are signed with SigV4 for the `xray` service.
XRAY_OTLP = re.compile(r"^https://xray\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/v1/traces$")
REDACTED = "[content withheld]"

# What was said, prompted or passed to a tool. LiveKit marks its own content attributes with a
# `pii` segment (lk.pii.user_transcript, lk.pii.response.text, ...); the GenAI conventions fix
# the names of theirs. Checked here as well as by the library, so that neither a library upgrade
# nor a span of ours can put a transcript into an exported attribute.
CONTENT_ATTRIBUTES = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "gen_ai.memory.query.text",
        "gen_ai.memory.records",
        "gen_ai.evaluation.explanation",
        # Exception messages may quote what was said (a tool's error, a provider's echo).
        "exception.message",
        "exception.stacktrace",
    }
)
CONTENT_PREFIXES = ("gen_ai.prompt.variable",)
# The GenAI content events carry the message body in a generic `content` attribute.
CONTENT_EVENTS = frozenset(
    {
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
    }
)


def is_content(key: str) -> bool:
    return "pii" in key.split(".") or key in CONTENT_ATTRIBUTES or key.startswith(CONTENT_PREFIXES)


def without_content(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if not is_content(k)}


class ContentFilter(SpanProcessor):
    """Drops content attributes and events from every ended span before any exporter sees it.

    Registered before the exporting processor: `on_end` runs in registration order over one
    shared snapshot, so what is rebound here is what the exporter sends.
    """

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        events = span.events
        dirty_events = any(
            e.name in CONTENT_EVENTS or any(is_content(k) for k in e.attributes or {})
            for e in events
        )
        if not dirty_events and not any(is_content(k) for k in attributes):
            return
        # Rebound, not mutated: the ended span's attribute map is immutable and shared.
        span._attributes = without_content(attributes)  # type: ignore[assignment]
        if dirty_events:
            span._events = _clean_events(events)  # type: ignore[assignment]
        if span.status.status_code is StatusCode.ERROR and span.status.description:
            span._status = Status(StatusCode.ERROR, REDACTED)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _clean_events(events: Sequence[Event]) -> list[Event]:
    return [
        Event(e.name, attributes=without_content(e.attributes), timestamp=e.timestamp)
        for e in events
        if e.name not in CONTENT_EVENTS
    ]


def exporter_for(endpoint: str, timeout: float = 5.0) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    xray = XRAY_OTLP.match(endpoint)
    session = SigV4Session(xray.group(1)) if xray else None
    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout, session=session)


def build_provider(
    settings: TracingSettings,
    service: str,
    sampler: Sampler,
    environ: Mapping[str, str] = os.environ,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """A provider exporting to the configured endpoint; None when tracing is off.

    `exporter` replaces the OTLP one (tests read spans in memory with it).
    """
    endpoint = settings.export_endpoint(environ)
    if endpoint is None and exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}), sampler=sampler)
    if not settings.include_content:
        provider.add_span_processor(ContentFilter())
    provider.add_span_processor(BatchSpanProcessor(exporter or exporter_for(str(endpoint))))
    return provider


class SigV4Session(requests.Session):
    """A requests session that signs each OTLP export for X-Ray with the process's AWS
    credentials (the task role or the function's role, refreshed as they rotate)."""

    def __init__(self, region: str) -> None:
        import boto3

        super().__init__()
        self._region = region
        self._credentials = boto3.Session().get_credentials()

    def send(self, request: Any, **kwargs: Any) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            raise RuntimeError("no AWS credentials to sign the trace export with")
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=request.body,
            headers={k: v for k, v in request.headers.items() if k.lower().startswith("content-")},
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "xray", self._region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return super().send(request, **kwargs)
