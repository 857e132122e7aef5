"""Load and abuse on the control plane: mixed requests from many clients, then the invariant check.

Starts `make api`'s control plane (uvicorn + the embedded AWS emulator) as a subprocess beside a
real LiveKit server, then sends `--requests` creates, reads, lists and deletes from `--clients`
concurrent clients across `--users` users; about `--abort` of them are abandoned by the client
mid-flight (a timeout far shorter than the request). Prints p50 / p99 latency per route, the 5xx
count, and the audit (`python -m functions.audit`) of what the run left behind; writes the
figures to bench/results/api_load.json.

    .venv/bin/python bench/api_load.py [--requests 1000 --clients 50 --users 20 --abort 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.stack import HOST, free_port  # noqa: E402
from tests.support.livekit import start_livekit_server, stop_process  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api_load.json"
API = "/voice/realtime"
# A client that gives up this fast abandons the request while the server is still working on it.
ABORT_TIMEOUT = 0.003
WEIGHTS = {"create": 3, "read": 3, "list": 2, "delete": 2}


@dataclass
class Tally:
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    aborted: int = 0
    transport_errors: int = 0
    sent: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for by in self.statuses.values() for s, n in by.items() if s >= 500)


@dataclass
class Load:
    client: httpx.AsyncClient
    keys: dict[str, str]  # user -> key
    abort: float
    remaining: int
    tally: Tally = field(default_factory=Tally)
    sessions: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


async def one_request(load: Load, rng: random.Random) -> None:
    user = rng.choice(list(load.keys))
    route = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    owned = load.sessions[user]
    if route in ("read", "delete") and not owned:
        route = "create"
    headers = {"x-api-key": load.keys[user]}
    sid = rng.choice(owned) if owned else ""
    method, path, body = {
        "create": ("POST", "/session", {"agent_type": "single_agent"}),
        "read": ("GET", f"/session/{sid}", None),
        "list": ("GET", "/sessions", None),
        "delete": ("DELETE", f"/session/{sid}", None),
    }[route]
    aborting = rng.random() < load.abort
    timeout = ABORT_TIMEOUT if aborting else 30.0
    started = time.perf_counter()
    load.tally.sent += 1
    try:
        resp = await load.client.request(
            method, API + path, headers=headers, json=body, timeout=timeout
        )
    except httpx.TimeoutException:
        if aborting:
            load.tally.aborted += 1
        else:
            load.tally.transport_errors += 1
        return
    except httpx.TransportError:
        load.tally.transport_errors += 1
        return
    load.tally.latency_ms[route].append((time.perf_counter() - started) * 1000)
    load.tally.statuses[route][resp.status_code] += 1
    if route == "create" and resp.status_code == 201:
        owned.append(resp.json()["session_id"])
    if route == "delete" and resp.status_code == 200 and sid in owned:
        owned.remove(sid)


async def client_loop(load: Load, seed: int) -> None:
    rng = random.Random(seed)
    while load.take():
        await one_request(load, rng)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_api(
    workdir: Path, livekit_url: str, keys: dict[str, str]
) -> tuple[subprocess.Popen, str, str]:
    api_port, moto_port = free_port(), free_port()
    env = os.environ | {
        "API_HOST": HOST,
        "API_PORT": str(api_port),
        "MOTO_PORT": str(moto_port),
        "LIVEKIT_URL": livekit_url,
        "VOICE_API_KEYS": ",".join(f"{key}:{user}" for user, key in keys.items()),
    }
    log = (workdir / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local.api"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    return proc, f"http://{HOST}:{api_port}", f"http://{HOST}:{moto_port}"


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API exited during start-up; see api.log")
        try:
            if httpx.get(f"{base}{API}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not answer /health in time")


def run_audit(moto: str, livekit_url: str) -> dict:
    """`python -m functions.audit --json` against the emulator the API used."""
    from infra.local.aws import local_aws_env

    env = os.environ | local_aws_env(moto) | {"LIVEKIT_URL": livekit_url, "ENVIRONMENT": "local"}
    out = subprocess.run(
        [sys.executable, "-m", "functions.audit", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.stdout)
    report["exit_code"] = out.returncode
    return report


async def drive(base: str, keys: dict[str, str], args: argparse.Namespace) -> tuple[Tally, float]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:
        load = Load(client=client, keys=keys, abort=args.abort, remaining=args.requests)
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(load, seed) for seed in range(args.clients)))
        return load.tally, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--abort", type=float, default=0.1, help="share of requests abandoned")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    keys = {f"load-user-{i:02d}": "vk_load_" + secrets.token_urlsafe(18) for i in range(args.users)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        livekit = start_livekit_server(workdir)
        api, base, moto = start_api(workdir, livekit.url, keys)
        try:
            wait_healthy(base, api)
            tally, elapsed = asyncio.run(drive(base, keys, args))
            # Abandoned requests may still be running on the server: let them land first.
            time.sleep(2)
            audit = run_audit(moto, livekit.url)
        finally:
            api.terminate()
            api.wait(timeout=20)
            stop_process(livekit.process)

    routes = {
        route: {
            "n": len(values),
            "p50_ms": round(percentile(values, 0.5), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "mean_ms": round(statistics.fmean(values), 1),
            "statuses": dict(sorted(tally.statuses[route].items())),
        }
        for route, values in sorted(tally.latency_ms.items())
    }
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "requests": tally.sent,
        "clients": args.clients,
        "users": args.users,
        "aborted_by_client": tally.aborted,
        "transport_errors": tally.transport_errors,
        "seconds": round(elapsed, 2),
        "server_errors_5xx": tally.server_errors,
        "routes": routes,
        "audit": {
            "clean": audit["exit_code"] == 0,
            "live_sessions": audit["live_sessions"],
            "users": audit["users"],
            "violations": [f for f in audit["findings"] if not f["repaired"]],
        },
    }
    print(
        f"api load: {tally.sent} requests from {args.clients} clients across {args.users} users "
        f"in {elapsed:.1f} s ({tally.aborted} abandoned by the client)"
    )
    for route, r in routes.items():
        print(
            f"  {route:<7} n={r['n']:<4} p50 {r['p50_ms']:7.1f} ms   p99 {r['p99_ms']:7.1f} ms   "
            f"statuses {r['statuses']}"
        )
    print(f"  5xx: {tally.server_errors}   transport errors: {tally.transport_errors}")
    violations = result["audit"]["violations"]
    print(
        f"  audit: {'clean' if result['audit']['clean'] else 'VIOLATED'} "
        f"({audit['live_sessions']} live sessions, {len(violations)} violations)"
    )
    for v in violations:
        print(f"    {v['kind']} {v['subject']}: {v['detail']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"  written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return 0 if tally.server_errors == 0 and result["audit"]["clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
