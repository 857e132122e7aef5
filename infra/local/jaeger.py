"""The local trace viewer: Jaeger (v2, built from the pinned release by `make jaeger`) on loopback,
receiving OTLP/HTTP and keeping traces in memory; and a reader of one call's trace from its
query API.

`python -m infra.local.jaeger SESSION_ID [QUERY_URL]` prints that call's trace as a tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.paths import ROOT, STATE_DIR
from infra.local.stack import HOST, free_port, stop_process, wait_ready

DEFAULT_OTLP_PORT = 4318
DEFAULT_QUERY_PORT = 16686
SERVICES = ("voice-control-plane", "voice-worker")


def find_jaeger() -> str | None:
    for candidate in (
        os.environ.get("JAEGER_BIN"),
        shutil.which("jaeger"),
        str(ROOT / ".bin" / "jaeger"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def jaeger_yaml(otlp_port: int, query_port: int, grpc_port: int, health_port: int) -> str:
    """All-in-one on loopback: OTLP/HTTP in, memory storage, the query API; nothing else listens
    (Jaeger's own defaults open a dozen fixed ports)."""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 20000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: {HOST}:{query_port}
    grpc:
      endpoint: {HOST}:{grpc_port}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: {HOST}:{health_port}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {HOST}:{otlp_port}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


@dataclass
class JaegerOptions:
    otlp_port: int = DEFAULT_OTLP_PORT
    query_port: int = DEFAULT_QUERY_PORT
    grpc_port: int = 16685
    health_port: int = 13133
    run_dir: Path = STATE_DIR / "run"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, run_dir: Path) -> JaegerOptions:
        return cls(free_port(), free_port(), free_port(), free_port(), run_dir)

    @property
    def otlp_url(self) -> str:
        """What OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set to."""
        return f"http://{HOST}:{self.otlp_port}/v1/traces"

    @property
    def query_url(self) -> str:
        return f"http://{HOST}:{self.query_port}"


class Jaeger:
    def __init__(self, options: JaegerOptions) -> None:
        self.opts = options
        self.proc: subprocess.Popen[bytes] | None = None
        options.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        return self.opts.run_dir / "jaeger.log"

    def start(self) -> None:
        binary = find_jaeger()
        if binary is None:
            raise RuntimeError("no jaeger binary: run `make jaeger` (or put one on PATH)")
        o = self.opts
        config = o.run_dir / "jaeger.yaml"
        config.write_text(jaeger_yaml(o.otlp_port, o.query_port, o.grpc_port, o.health_port))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "--config", str(config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready("jaeger", self.proc, self.log_path, f"{o.query_url}/api/services", 60)
        wait_ready("jaeger", self.proc, self.log_path, f"tcp:{o.otlp_port}", 30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> Jaeger:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


def find_traces(query_url: str, service: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    """Traces (Jaeger's JSON) with a span of `service` carrying all of `tags`."""
    params = urllib.parse.urlencode(
        {"service": service, "tags": json.dumps(tags), "limit": 20, "lookback": "1h"}
    )
    return list(_get(f"{query_url}/api/traces?{params}").get("data") or [])


def call_trace(query_url: str, session_id: str) -> dict[str, Any] | None:
    """The trace of one call: found by the session id its spans carry."""
    for service in SERVICES:
        found = find_traces(query_url, service, {"voice.session_id": session_id})
        if found:
            trace_id = found[0]["traceID"]
            data = _get(f"{query_url}/api/traces/{trace_id}").get("data") or []
            return dict(data[0]) if data else None
    return None


@dataclass(frozen=True)
class Span:
    """A span of a Jaeger trace with what the tests and the tree read."""

    span_id: str
    trace_id: str
    name: str
    service: str
    parent_id: str | None
    start_us: int
    duration_us: int
    attributes: dict[str, Any]


def spans_of(trace: dict[str, Any]) -> list[Span]:
    processes = trace.get("processes", {})
    spans = []
    for raw in trace.get("spans", []):
        parents = [r["spanID"] for r in raw.get("references", []) if r["refType"] == "CHILD_OF"]
        spans.append(
            Span(
                span_id=raw["spanID"],
                trace_id=raw["traceID"],
                name=raw["operationName"],
                service=processes.get(raw["processID"], {}).get("serviceName", "?"),
                parent_id=parents[0] if parents else None,
                start_us=int(raw["startTime"]),
                duration_us=int(raw["duration"]),
                attributes={t["key"]: t["value"] for t in raw.get("tags", [])},
            )
        )
    return sorted(spans, key=lambda s: s.start_us)


# Attributes worth a glance in the tree: latencies and models, never content.
_SHOWN = (
    "voice.session_id",
    "lk.e2e_latency",
    "lk.response.ttft",
    "lk.response.ttfb",
    "lk.transcription_delay",
    "lk.end_of_turn_delay",
    "gen_ai.request.model",
    "lk.function_tool.name",
    "lk.interrupted",
)


def tree(spans: list[Span]) -> str:
    by_parent: dict[str | None, list[Span]] = {}
    ids = {s.span_id for s in spans}
    for s in spans:
        by_parent.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in by_parent.get(parent, []):
            shown = " ".join(f"{k}={s.attributes[k]}" for k in _SHOWN if k in s.attributes)
            lines.append(
                f"{'  ' * depth}{s.name} [{s.service}] {s.duration_us / 1000:.1f} ms {shown}"
            )
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m infra.local.jaeger SESSION_ID [QUERY_URL]", file=sys.stderr)
        return 2
    query_url = argv[1] if len(argv) > 1 else f"http://{HOST}:{DEFAULT_QUERY_PORT}"
    deadline = time.monotonic() + 5
    found = call_trace(query_url, argv[0])
    while found is None and time.monotonic() < deadline:
        time.sleep(0.5)
        found = call_trace(query_url, argv[0])
    if found is None:
        print(f"no trace for session {argv[0]} at {query_url}", file=sys.stderr)
        return 1
    print(f"trace {found['traceID']}  ({query_url}/api/traces/{found['traceID']})")
    print(tree(spans_of(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
