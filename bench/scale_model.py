"""Scale model: what a target load asks of DynamoDB, Lambda, Fargate and LiveKit, what it costs,
and which limit binds first.

Inputs, all measured or published (each printed with its source):
- writes per partition-key value per session lifecycle: bench/results/key_writes.json
  (`bench/key_writes.py`, counted on the emulator through the API);
- CPU and PSS per live call of the worker: bench/results/load.json (`bench/load.py`), through
  `bench/sizing.py`, which also holds the Fargate prices;
- LiveKit's published single-node benchmark (docs.livekit.io, Self-hosting > Benchmarks:
  c2-standard-16, 16 cores, audio only, 10 publishers / 3,000 subscribers, 959,156 packets/s
  out and 305 in at 80% CPU).

The target (default: 10,000 concurrent calls, 500 new sessions/s, 3-minute calls) is taken as:
concurrent calls held around the clock (monthly volume = concurrent / call length), and the new
sessions/s as the peak rate every per-second limit must survive (each lifecycle's writes charged
at that rate: an upper bound). Prices are us-east-1 on-demand list prices (below, `PRICES`).

    .venv/bin/python bench/scale_model.py [--concurrent 10000] [--new-per-second 500]
        [--call-minutes 3] [--largest-account-share 0.1] [--out bench/results/scale_model.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sizing  # noqa: E402

KEY_WRITES = ROOT / "bench" / "results" / "key_writes.json"
RESULTS = ROOT / "bench" / "results" / "scale_model.json"

# Default quotas and hard limits (us-east-1). `request` says whether Service Quotas can raise it.
LIMITS = {
    "dynamodb_partition_wcu": (1000, "hard: per partition-key value, 1 WCU = one 1 KB write/s"),
    "dynamodb_partition_rcu": (3000, "hard: per partition-key value, 1 RCU = one 4 KB read/s"),
    "dynamodb_table_wru": (40000, "request: on-demand table-level write throughput"),
    "dynamodb_table_rru": (40000, "request: on-demand table-level read throughput"),
    "lambda_concurrency": (1000, "request: concurrent executions per region"),
    "api_gateway_rps": (10000, "request: HTTP API requests/s per account and region"),
    "ecs_tasks_per_service": (5000, "request: ECS tasks per service"),
    "fargate_launch_per_second": (20, "request: Fargate task launch rate (burst 100)"),
}

# us-east-1 on-demand list prices (USD), as of 2026-12.
PRICES = {
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
    "lambda_per_gb_second_arm": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "api_gateway_http_per_million": 1.00,
    "sqs_per_million": 0.40,
    # c6i.4xlarge: 16 vCPUs, the nearest EC2 size to the c2-standard-16 LiveKit benchmarked.
    "livekit_node_hour": 0.68,
    # Internet egress, first 10 TB/month tier (later tiers are cheaper: an upper bound).
    "egress_per_gb": 0.09,
}

# LiveKit's published audio benchmark on one 16-core node, and what one of our calls sends.
LIVEKIT_BENCH_PACKETS = 959_156 + 305  # packets/s out + in at 80% CPU
PACKETS_PER_TRACK = 50  # Opus 20 ms frames
# Caller publishes 1 track, the agent 2 (its voice, the thinking sound); each side receives
# the other's: 3 tracks in and 3 out per call.
TRACKS_PER_CALL = 3
# The benchmark is one large room; 1:1 rooms add per-participant work (ICE, DTLS, RTCP, room
# state): half the packet-rate extrapolation is assumed until measured.
LIVEKIT_DERATE = 0.5

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Target:
    concurrent: int = 10_000
    new_per_second: float = 500.0
    call_minutes: float = 3.0
    # The busiest account's share of all new sessions: its own counter, usage and by-user keys.
    largest_account_share: float = 0.1


@dataclass(frozen=True)
class Assumptions:
    session_item_kb: float = 1.5  # a session item (and its index entries, all attributes)
    small_item_kb: float = 0.3  # counters, usage rows, heartbeats
    join_seconds: float = 3.0  # a pending session's wait for its caller
    heartbeat_interval: float = 5.0  # voice.realtime.worker.heartbeat_interval
    key_shards: int = 16  # voice.table.KEY_SHARDS
    task_cpu: int = 1024  # WorkerCpu
    task_memory: int = 2048  # WorkerMemory
    max_jobs: int = 3  # WorkerMaxJobs
    target_active_jobs: float = 2.0  # WorkerTargetActiveJobs
    webhooks_per_call: int = 12  # LiveKit's room/participant/track events for a 1:1 call
    api_ms: float = 60.0  # a create, warm
    webhook_ms: float = 30.0  # a LiveKit webhook, warm
    watchdog_ms: float = 150.0  # one agent check per join (a LiveKit API call)
    api_memory_gb: float = 1.0  # the API function's MemorySize
    egress_kbps: float = 48.0  # the agent's audio to the caller, with RTP/SRTP/UDP overhead
    cpu_per_call: float = 0.224  # cores, bench/results/load.json via bench/sizing.py
    pss_per_call: float = 125.0  # MB
    calls_per_livekit_node: int | None = None  # None: from LiveKit's published benchmark


@dataclass
class Limit:
    name: str
    demand: float
    limit: float
    note: str
    what: str

    @property
    def ratio(self) -> float:
        return self.demand / self.limit

    @property
    def binds_at(self) -> float:
        """The multiple of the target at which this limit is reached."""
        return math.inf if self.demand == 0 else self.limit / self.demand


@dataclass
class Model:
    target: Target
    assumptions: Assumptions
    steady_new_per_second: float
    key_rates: list[dict[str, Any]]
    limits: list[Limit]
    tasks: int
    calls_per_task: int
    vcpus: float
    livekit_nodes: int
    calls_per_livekit_node: int
    monthly_cost: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def first_to_bind(self) -> Limit:
        return max(self.limits, key=lambda lim: lim.ratio)


def kind_of(key: str) -> str:
    """`shard`, `owner` (one per user or account) or `item` (one per session)."""
    if "<shard>" in key:
        return "shard"
    if "<owner>" in key:
        return "owner"
    return "item"


def wcu_per_write(key: str, transactional_share: float, a: Assumptions) -> float:
    """Write units one write costs: 1 per KB (rounded up), twice inside a transaction."""
    session = key.startswith(("by-state|", "by-user|", "table|SESSION#"))
    units = math.ceil(a.session_item_kb if session else a.small_item_kb)
    return units * (1 + transactional_share)


def livekit_calls_per_node(a: Assumptions) -> int:
    if a.calls_per_livekit_node is not None:
        return a.calls_per_livekit_node
    packets_per_call = 2 * TRACKS_PER_CALL * PACKETS_PER_TRACK  # in and out
    return math.floor(LIVEKIT_BENCH_PACKETS / packets_per_call * LIVEKIT_DERATE)


def build(target: Target, a: Assumptions, key_writes: dict[str, Any]) -> Model:
    rate = target.new_per_second
    call_s = target.call_minutes * 60
    steady = target.concurrent / call_s
    notes = []
    if rate > steady * 1.05:
        notes.append(
            f"{rate:g} new sessions/s with {target.call_minutes:g}-minute calls would hold "
            f"{rate * call_s:,.0f} calls; the model takes {rate:g}/s as the peak create rate "
            f"and {steady:.1f}/s (= {target.concurrent:,} / {call_s:g} s) as the steady one"
        )

    # -- fleet: tasks, then LiveKit nodes
    calls_per_task = min(
        a.max_jobs,
        sizing.calls_by_cpu(a.task_cpu, a.cpu_per_call),
        sizing.calls_by_memory(a.task_memory, a.pss_per_call),
    )
    tasks = math.ceil(target.concurrent / min(a.target_active_jobs, calls_per_task))
    vcpus = tasks * a.task_cpu / 1024
    per_node = livekit_calls_per_node(a)
    # One node more than the calls need: a node lost mid-call has somewhere to reconnect to.
    nodes = math.ceil(target.concurrent / per_node) + 1

    # -- DynamoDB writes per key value
    key_rates = []
    for key, row in key_writes["kinds"].items():
        wpl = row["writes_per_lifecycle"]
        txn = row["transactional_per_lifecycle"] / wpl if wpl else 0.0
        kind = kind_of(key)
        if kind == "shard":
            writes = wpl * rate / a.key_shards
        elif kind == "owner":
            writes = wpl * rate * target.largest_account_share
        else:
            writes = wpl / call_s  # one session's own item, over its call
        key_rates.append(
            {
                "key": key,
                "kind": kind,
                "writes_per_lifecycle": wpl,
                "writes_per_second": writes,
                "wcu_per_second": writes * wcu_per_write(key, txn, a),
            }
        )
    beats = tasks / a.heartbeat_interval
    key_rates.append(
        {
            "key": "table|FLEET#<shard>",
            "kind": "shard",
            "writes_per_lifecycle": 0.0,
            "writes_per_second": beats / a.key_shards,
            "wcu_per_second": beats / a.key_shards * math.ceil(a.small_item_kb),
        }
    )
    hottest_write = max(key_rates, key=lambda r: r["wcu_per_second"])
    lifecycle_wcu = sum(
        r["writes_per_lifecycle"]
        * wcu_per_write(
            r["key"],
            key_writes["kinds"][r["key"]]["transactional_per_lifecycle"] / r["writes_per_lifecycle"]
            if r["writes_per_lifecycle"]
            else 0.0,
            a,
        )
        for r in key_rates
        if r["key"] in key_writes["kinds"]
    )
    table_wcu = lifecycle_wcu * rate + beats * math.ceil(a.small_item_kb)

    # -- DynamoDB reads: admission reads every heartbeat (consistent) and counts the sessions
    # not yet joined (index, eventually consistent) on every create, shard by shard.
    beats_per_shard = tasks / a.key_shards
    hb_rcu = max(1, math.ceil(beats_per_shard * a.small_item_kb / 4))
    pending_per_shard = rate * a.join_seconds / a.key_shards
    pending_rcu = max(0.5, math.ceil(pending_per_shard * a.session_item_kb / 4) * 0.5)
    admission_shard_rcu = max(hb_rcu, pending_rcu) * rate
    # Each shard, then the two pre-shard keys (empty: the minimum a query costs).
    admission_create_rcu = (hb_rcu + pending_rcu) * a.key_shards + 1 + 0.5
    # Every request reads its API key (eventually consistent): one key value per API key.
    requests = rate * (1 + a.webhooks_per_call)
    table_rcu = rate * (admission_create_rcu + 0.5) + requests * 0.5

    # -- Lambda and API Gateway
    concurrency = (
        rate * a.api_ms + rate * a.webhooks_per_call * a.webhook_ms + rate * a.watchdog_ms
    ) / 1000

    # -- Fargate growth: concurrency rises at (peak - steady) calls/s while the burst lasts.
    growth_tasks = max(0.0, rate - steady) / min(a.target_active_jobs, calls_per_task)

    limits = [
        Limit(
            "dynamodb_partition_wcu",
            hottest_write["wcu_per_second"],
            *LIMITS["dynamodb_partition_wcu"],
            f"busiest key value: {hottest_write['key']}",
        ),
        Limit(
            "dynamodb_partition_rcu",
            admission_shard_rcu,
            *LIMITS["dynamodb_partition_rcu"],
            "admission's reads of one FLEET / STATE#pending shard on every create",
        ),
        Limit("dynamodb_table_wru", table_wcu, *LIMITS["dynamodb_table_wru"], "all writes, table"),
        Limit("dynamodb_table_rru", table_rcu, *LIMITS["dynamodb_table_rru"], "all reads, table"),
        Limit(
            "lambda_concurrency",
            concurrency,
            *LIMITS["lambda_concurrency"],
            "creates, LiveKit webhooks, agent checks",
        ),
        Limit(
            "api_gateway_rps", requests, *LIMITS["api_gateway_rps"], "creates and LiveKit webhooks"
        ),
        Limit("ecs_tasks_per_service", tasks, *LIMITS["ecs_tasks_per_service"], "worker tasks"),
        Limit(
            "fargate_launch_per_second",
            growth_tasks,
            *LIMITS["fargate_launch_per_second"],
            "tasks to start per second while the peak lasts (beyond warm headroom)",
        ),
    ]

    # -- monthly cost at the concurrent target held around the clock
    sessions = steady * 3600 * HOURS_PER_MONTH
    call_minutes = target.concurrent * 60 * HOURS_PER_MONTH
    lambda_requests = sessions * (1 + a.webhooks_per_call + 1)
    lambda_gb_s = (
        sessions
        * (a.api_ms + a.webhooks_per_call * a.webhook_ms + a.watchdog_ms)
        / 1000
        * a.api_memory_gb
    )
    task = sizing.TaskSize(a.task_cpu, a.task_memory, calls_per_task)
    monthly = {
        "fargate_workers": tasks * task.hourly * HOURS_PER_MONTH,
        "livekit_nodes": nodes * PRICES["livekit_node_hour"] * HOURS_PER_MONTH,
        "dynamodb_writes": (
            sessions * lifecycle_wcu + beats * 3600 * HOURS_PER_MONTH * math.ceil(a.small_item_kb)
        )
        / 1e6
        * PRICES["dynamodb_per_million_wru"],
        "dynamodb_reads": sessions
        * (admission_create_rcu + 0.5 + (1 + a.webhooks_per_call) * 0.5)
        / 1e6
        * PRICES["dynamodb_per_million_rru"],
        "lambda": lambda_requests / 1e6 * PRICES["lambda_per_million_requests"]
        + lambda_gb_s * PRICES["lambda_per_gb_second_arm"],
        "api_gateway": sessions
        * (1 + a.webhooks_per_call)
        / 1e6
        * PRICES["api_gateway_http_per_million"],
        "sqs_agent_checks": sessions * 3 / 1e6 * PRICES["sqs_per_million"],
        "egress_to_callers": call_minutes * 60 * a.egress_kbps / 8 / 1e6 * PRICES["egress_per_gb"],
    }
    monthly["total"] = sum(monthly.values())
    return Model(
        target=target,
        assumptions=a,
        steady_new_per_second=steady,
        key_rates=key_rates,
        limits=limits,
        tasks=tasks,
        calls_per_task=calls_per_task,
        vcpus=vcpus,
        livekit_nodes=nodes,
        calls_per_livekit_node=per_node,
        monthly_cost=monthly,
        notes=notes,
    )


# Steps of growth, as multiples of the target, for "what to request before each step".
LADDER = (0.01, 0.1, 0.25, 0.5, 1.0, 2.0)
# A limit past this share of itself at a step is one to have raised before that step.
REQUEST_AT = 0.8


def ladder(target: Target, a: Assumptions, key_writes: dict[str, Any]) -> list[dict[str, Any]]:
    """The model at each step of LADDER: the limits past REQUEST_AT of themselves there."""
    rows = []
    for factor in LADDER:
        step = Target(
            max(1, round(target.concurrent * factor)),
            target.new_per_second * factor,
            target.call_minutes,
            target.largest_account_share,
        )
        m = build(step, a, key_writes)
        rows.append(
            {
                "concurrent": step.concurrent,
                "new_per_second": step.new_per_second,
                "over": [
                    {"limit": lim.name, "ratio": round(lim.ratio, 3)}
                    for lim in sorted(m.limits, key=lambda x: -x.ratio)
                    if lim.ratio >= REQUEST_AT
                ],
                "monthly_usd": round(m.monthly_cost["total"]),
            }
        )
    return rows


def report(m: Model) -> list[str]:
    t, a = m.target, m.assumptions
    lines = [
        f"target: {t.concurrent:,} concurrent calls, {t.new_per_second:g} new sessions/s (peak), "
        f"{t.call_minutes:g}-minute calls, busiest account {t.largest_account_share:.0%} of "
        "new sessions",
        *(f"note: {n}" for n in m.notes),
        "",
        "DynamoDB writes per partition-key value (limit 1,000 WCU/s each):",
    ]
    for r in sorted(m.key_rates, key=lambda r: -r["wcu_per_second"]):
        lines.append(
            f"  {r['key']:<32} {r['kind']:<6} {r['writes_per_second']:>9.1f} writes/s "
            f"{r['wcu_per_second']:>9.1f} WCU/s"
        )
    lines += ["", "Limits (demand / default limit; binds at this multiple of the target):"]
    for lim in sorted(m.limits, key=lambda x: -x.ratio):
        lines.append(
            f"  {lim.name:<26} {lim.demand:>10,.1f} / {lim.limit:>7,.0f}  {lim.ratio:>6.0%}  "
            f"x{lim.binds_at:.2f}  {lim.what}; {lim.note}"
        )
    first = m.first_to_bind
    verdict = "binds at the target" if first.ratio >= 1 else "is the first to bind"
    lines += [
        "",
        f"first limit: {first.name} {verdict} ({first.ratio:.0%} of its limit; reached at "
        f"x{first.binds_at:.2f} the target): {first.what}",
        "",
        f"workers: {m.tasks:,} Fargate tasks of {a.task_cpu} CPU / {a.task_memory} MB "
        f"({m.calls_per_task} calls each, scaled to {a.target_active_jobs:g}), {m.vcpus:,.0f} vCPUs",
        f"LiveKit: {m.livekit_nodes} nodes of 16 vCPUs ({m.calls_per_livekit_node:,} calls each "
        "from LiveKit's published benchmark, halved; one spare)",
        "",
        "monthly cost (USD, us-east-1 on-demand, target held 730 h):",
    ]
    for item, usd in m.monthly_cost.items():
        lines.append(f"  {item:<20} {usd:>14,.0f}")
    per_minute = m.monthly_cost["total"] / (t.concurrent * 60 * HOURS_PER_MONTH)
    lines.append(f"  = ${per_minute:.5f} per call-minute (models, STT and TTS not included)")
    return lines


def to_json(m: Model, sources: dict[str, Any]) -> dict[str, Any]:
    first = m.first_to_bind
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "target": asdict(m.target),
        "assumptions": asdict(m.assumptions),
        "prices_usd": PRICES,
        "steady_new_per_second": round(m.steady_new_per_second, 2),
        "notes": m.notes,
        "key_rates": m.key_rates,
        "limits": [
            asdict(lim) | {"ratio": round(lim.ratio, 4), "binds_at": round(lim.binds_at, 3)}
            for lim in m.limits
        ],
        "first_to_bind": first.name,
        "fargate_tasks": m.tasks,
        "calls_per_task": m.calls_per_task,
        "vcpus": m.vcpus,
        "livekit_nodes": m.livekit_nodes,
        "calls_per_livekit_node": m.calls_per_livekit_node,
        "monthly_cost_usd": {k: round(v, 2) for k, v in m.monthly_cost.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=Target.concurrent)
    parser.add_argument("--new-per-second", type=float, default=Target.new_per_second)
    parser.add_argument("--call-minutes", type=float, default=Target.call_minutes)
    parser.add_argument("--largest-account-share", type=float, default=Target.largest_account_share)
    parser.add_argument("--key-writes", type=Path, default=KEY_WRITES)
    parser.add_argument("--calls-per-livekit-node", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    key_writes = json.loads(args.key_writes.read_text())
    cpu, pss = sizing.measured()
    target = Target(
        args.concurrent, args.new_per_second, args.call_minutes, args.largest_account_share
    )
    a = Assumptions(
        cpu_per_call=cpu,
        pss_per_call=pss,
        key_shards=key_writes["key_shards"],
        calls_per_livekit_node=args.calls_per_livekit_node,
    )
    m = build(target, a, key_writes)
    print("\n".join(report(m)))
    steps = ladder(target, a, key_writes)
    print(f"\nsteps (limits past {REQUEST_AT:.0%} of themselves: raise them before the step):")
    for row in steps:
        over = ", ".join(f"{o['limit']} {o['ratio']:.0%}" for o in row["over"]) or "none"
        print(
            f"  {row['concurrent']:>7,} calls, {row['new_per_second']:>6g} new/s, "
            f"${row['monthly_usd']:>9,}/month: {over}"
        )
    sources = {
        "key_writes": f"{args.key_writes.relative_to(ROOT) if args.key_writes.is_relative_to(ROOT) else args.key_writes} ({key_writes['date']})",
        "worker": f"bench/results/load.json: {cpu:.3f} cores and {pss:.0f} MB PSS per call",
        "livekit": "docs.livekit.io Self-hosting > Benchmarks: audio only, c2-standard-16, "
        "959,156 packets/s out at 80% CPU",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = to_json(m, sources) | {"steps": steps}
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
