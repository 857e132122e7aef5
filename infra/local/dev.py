"""`make dev`: runs the whole system on loopback until Ctrl-C, then stops every process it started."""

from __future__ import annotations

import os
import signal
import sys
import time

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.jaeger import Jaeger, JaegerOptions, find_jaeger
from infra.local.sip import SipOptions, SipServices, sip_port_from_env, sync_numbers
from infra.local.stack import LocalStack, StackOptions
from voice.config import get_config
from voice.tracing import ENDPOINT_ENV


def _openai_note() -> str | None:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return None
    return (
        "WARNING: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set: the agent joins calls but "
        "cannot hear, think or speak.\n         Set one (any OpenAI-compatible server works) "
        "and run `make dev` again."
    )


def start_phones(sip: SipServices, livekit_url: str) -> list[str]:
    print("starting: SIP service ...", flush=True)
    sip.start_sip(livekit_url)
    return sync_numbers(livekit_url)


def phone_lines(sip: SipServices, numbers: list[str]) -> list[str]:
    if not numbers:
        return []
    address = sip.opts.sip_address
    return [
        f"  SIP         udp {address}   (VOICE_SIP_PORT changes the port)",
        *(f"  Phone       call sip:{n}@{address}" for n in numbers),
    ]


def livekit_nodes_from_env() -> int:
    """`LIVEKIT_NODES`, else 1: how many LiveKit nodes `make dev` runs (more than one share Redis)."""
    raw = os.environ.get("LIVEKIT_NODES", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 9:
        raise SystemExit(f"LIVEKIT_NODES (environment) is {raw!r}: give a whole number from 1 to 9")
    return int(raw)


def livekit_lines(stack: LocalStack) -> list[str]:
    keys = f"({DEV_LIVEKIT_KEY} / {DEV_LIVEKIT_SECRET})"
    urls = stack.livekit_urls
    if len(urls) == 1:
        return [f"  LiveKit     {urls[0]}   {keys}"]
    return [
        f"  LiveKit     {len(urls)} nodes sharing Redis {stack.opts.redis_address} {keys}",
        *(
            f"    node {i + 1}    {url}   (rooms of callers who join here are placed here)"
            for i, url in enumerate(urls)
        ),
    ]


def start_jaeger(opts: StackOptions) -> Jaeger | None:
    """The local trace viewer, and the stack's pieces told to export to it; none without a
    binary or when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT already names a collector."""
    if os.environ.get(ENDPOINT_ENV) or find_jaeger() is None:
        return None
    jaeger = Jaeger(JaegerOptions(run_dir=opts.run_dir))
    print("starting: Jaeger (traces) ...", flush=True)
    jaeger.start()
    opts.extra_env[ENDPOINT_ENV] = jaeger.opts.otlp_url
    return jaeger


def trace_lines(jaeger: Jaeger | None) -> list[str]:
    if jaeger is None:
        return []
    return [
        f"  Traces      {jaeger.opts.query_url}/api/traces?service=voice-worker   "
        "(one call: python -m infra.local.jaeger SESSION_ID)",
    ]


def main() -> int:
    opts = StackOptions(
        api_port=int(os.environ.get("API_PORT", "8000")),
        api_keys=os.environ.get("VOICE_API_KEYS") or None,
        reaper_interval=float(os.environ.get("REAPER_INTERVAL_SECONDS", "30")),
        config_uri=os.environ.get("VOICE_CONFIG_URI") or StackOptions.config_uri,
        livekit_nodes=livekit_nodes_from_env(),
    )
    # Phone calls and several LiveKit nodes need Redis before LiveKit starts; phones need the SIP
    # service once it runs.
    phones = get_config().config.voice.realtime.telephony.enabled
    sip = SipServices(SipOptions(run_dir=opts.run_dir, sip_port=sip_port_from_env()))
    redis = phones or opts.livekit_nodes > 1
    if redis:
        opts.redis_address = sip.opts.redis_address
    try:
        jaeger = start_jaeger(opts)
    except RuntimeError as exc:
        print(f"could not start Jaeger, no traces: {exc}", file=sys.stderr)
        jaeger = None
    stack = LocalStack(opts)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print("starting: AWS emulator, API, LiveKit server, worker ...", flush=True)
    try:
        if redis:
            sip.start_redis()
        stack.start()
        numbers = start_phones(sip, stack.livekit_url) if phones else []
    except RuntimeError as exc:
        sip.stop()
        stack.stop()
        if jaeger is not None:
            jaeger.stop()
        print(f"could not start the local stack: {exc}", file=sys.stderr)
        return 1
    key = stack.api_keys[0][0]
    base = f"{stack.api_url}/voice/realtime"
    lines = [
        "",
        "The voice platform is running locally:",
        f"  API         {base}   (docs: {stack.api_url}/docs)",
        f"  Playground  {stack.playground_url}",
        f"  Console     {stack.console_url}",
        *livekit_lines(stack),
        f"  AWS (moto)  {stack.moto_url}",
        f"  Logs        {opts.run_dir}/*.log",
        *(f"  API key     {k}   (user {u})" for k, u in stack.api_keys),
        *phone_lines(sip, numbers),
        *trace_lines(jaeger),
        "",
        "Create a session:",
        f"  curl -s -X POST {base}/session -H 'X-API-Key: {key}' "
        "-H 'Content-Type: application/json' -d '{\"agent_type\": \"single_agent\"}'",
        "",
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)
    note = _openai_note()
    if note:
        print(f"\n{note}\n", flush=True)
    try:
        while not stopping:
            for name, proc in list(stack.procs.items()):
                if proc.poll() is not None:
                    print(f"{name} exited ({proc.returncode}); see {stack.log_path(name)}")
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        sip.stop()
        if jaeger is not None:
            jaeger.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
