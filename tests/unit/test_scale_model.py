"""The scale model's arithmetic, on small inputs worked out by hand (not its figures' taste)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import scale_model as sm

KEY_WRITES = {
    "key_shards": 4,
    "kinds": {
        "by-state|STATE#active#<shard>": {
            "writes_per_lifecycle": 3.0,
            "transactional_per_lifecycle": 0.0,
        },
        "table|ACCOUNT#<owner>": {"writes_per_lifecycle": 2.0, "transactional_per_lifecycle": 2.0},
        "table|SESSION#<id>": {"writes_per_lifecycle": 4.0, "transactional_per_lifecycle": 2.0},
    },
}
A = sm.Assumptions(
    session_item_kb=1.5,
    small_item_kb=0.3,
    key_shards=4,
    task_cpu=1024,
    task_memory=2048,
    max_jobs=3,
    target_active_jobs=2.0,
    cpu_per_call=0.2,
    pss_per_call=100.0,
    calls_per_livekit_node=100,
    heartbeat_interval=5.0,
    webhooks_per_call=10,
    api_ms=100.0,
    webhook_ms=10.0,
    watchdog_ms=100.0,
)
TARGET = sm.Target(
    concurrent=1200, new_per_second=40.0, call_minutes=1.0, largest_account_share=0.5
)


def rate(m: sm.Model, key: str) -> dict:
    return next(r for r in m.key_rates if r["key"] == key)


def test_write_rates_per_key_value_by_kind() -> None:
    m = sm.build(TARGET, A, KEY_WRITES)
    # A shard takes 1/4 of every session's writes; a 1.5 KB item costs 2 units a write.
    shard = rate(m, "by-state|STATE#active#<shard>")
    assert shard["writes_per_second"] == pytest.approx(3 * 40 / 4)
    assert shard["wcu_per_second"] == pytest.approx(30 * 2)
    # The busiest account takes half of the sessions; transactional writes cost twice.
    account = rate(m, "table|ACCOUNT#<owner>")
    assert account["writes_per_second"] == pytest.approx(2 * 40 * 0.5)
    assert account["wcu_per_second"] == pytest.approx(40 * 1 * 2)
    # One session's own item: its writes over its one-minute call.
    assert rate(m, "table|SESSION#<id>")["writes_per_second"] == pytest.approx(4 / 60)
    # Heartbeats: 600 tasks every 5 s over 4 shards.
    assert m.tasks == 600
    assert rate(m, "table|FLEET#<shard>")["writes_per_second"] == pytest.approx(600 / 5 / 4)


def test_fleet_livekit_and_lambda_arithmetic() -> None:
    m = sm.build(TARGET, A, KEY_WRITES)
    # min(max_jobs 3, CPU: floor(0.75 / 0.2) = 3, memory) calls a task; scaled at 2 a task.
    assert m.calls_per_task == 3 and m.tasks == math.ceil(1200 / 2) and m.vcpus == 600
    assert m.livekit_nodes == 1200 // 100 + 1
    limits = {lim.name: lim for lim in m.limits}
    # (40 creates x 100 ms + 400 webhooks x 10 ms + 40 checks x 100 ms) / 1000 ms.
    assert limits["lambda_concurrency"].demand == pytest.approx(12.0)
    assert limits["api_gateway_rps"].demand == pytest.approx(40 * 11)
    # Steady rate 1200 / 60 s = 20/s; the peak 40/s grows the fleet by 20 calls/s = 10 tasks/s.
    assert m.steady_new_per_second == pytest.approx(20.0)
    assert limits["fargate_launch_per_second"].demand == pytest.approx(10.0)
    assert m.notes and "2,400 calls" in m.notes[0]


def test_the_first_limit_to_bind_is_the_one_nearest_its_limit() -> None:
    m = sm.build(TARGET, A, KEY_WRITES)
    first = m.first_to_bind
    assert all(first.ratio >= lim.ratio for lim in m.limits)
    assert first.binds_at == pytest.approx(1 / first.ratio)
    bigger = sm.build(
        sm.Target(12_000, 400.0, 1.0, 0.5), A, KEY_WRITES
    )  # ten times the load: every demand that scales with it grows tenfold
    by_name = {lim.name: lim for lim in bigger.limits}
    for lim in m.limits:
        if lim.name in ("lambda_concurrency", "api_gateway_rps", "ecs_tasks_per_service"):
            assert by_name[lim.name].demand == pytest.approx(10 * lim.demand)


def test_monthly_cost_adds_up_its_parts() -> None:
    m = sm.build(TARGET, A, KEY_WRITES)
    parts = {k: v for k, v in m.monthly_cost.items() if k != "total"}
    assert m.monthly_cost["total"] == pytest.approx(sum(parts.values()))
    task_hour = 1 * sm.sizing.VCPU_HOUR + 2 * sm.sizing.GB_HOUR
    assert parts["fargate_workers"] == pytest.approx(600 * task_hour * sm.HOURS_PER_MONTH)
    assert parts["livekit_nodes"] == pytest.approx(
        13 * sm.PRICES["livekit_node_hour"] * sm.HOURS_PER_MONTH
    )
    # 48 kbit/s to each of 1,200 callers for a month.
    seconds = 1200 * 3600 * sm.HOURS_PER_MONTH
    assert parts["egress_to_callers"] == pytest.approx(
        seconds * 48 / 8 / 1e6 * sm.PRICES["egress_per_gb"]
    )


def test_the_published_livekit_benchmark_gives_calls_per_node() -> None:
    a = sm.Assumptions()
    # 959,461 packets/s over 300 packets/s a call, halved.
    assert sm.livekit_calls_per_node(a) == math.floor(959_461 / 300 * 0.5)


def test_the_command_writes_its_json_where_told(tmp_path: Path) -> None:
    writes = tmp_path / "key_writes.json"
    writes.write_text(json.dumps(KEY_WRITES | {"date": "2026-12-05T00:00:00+00:00"}))
    out = tmp_path / "scale.json"
    assert sm.main(["--key-writes", str(writes), "--out", str(out), "--concurrent", "1200"]) == 0
    result = json.loads(out.read_text())
    assert result["first_to_bind"] in {lim["name"] for lim in result["limits"]}
    assert [s["concurrent"] for s in result["steps"]] == [12, 120, 300, 600, 1200, 2400]
