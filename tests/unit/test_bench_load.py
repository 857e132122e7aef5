"""The load benchmark's bookkeeping: repeated runs are merged without hiding a failure, and a
run on a busy host is never called clean."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from types import ModuleType

from infra.local.paths import ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


load = _load()


def _step(**changes: object) -> object:
    base = load.StepResult(
        calls=2,
        p50_ms=1000.0,
        p95_ms=1200.0,
        overhead_p50_ms=100.0,
        overhead_p95_ms=200.0,
        failed_turns=0,
        failed_calls=0,
        join_p50_ms=700.0,
        join_p95_ms=800.0,
        cpu_cores_per_call=0.2,
        pss_mb_per_call=130.0,
        loop_lag_max_ms=40.0,
        release_ms=600.0,
        worker_eou_p50_ms=500.0,
        worker_llm_ttft_p50_ms=300.0,
        worker_tts_ttfb_p50_ms=200.0,
        worker_e2e_p50_ms=950.0,
        turns=6,
        idle_cpu_cores=0.05,
        errors=[],
    )
    return dataclasses.replace(base, **changes)


def test_repeated_runs_give_medians_and_keep_every_failure() -> None:
    runs = [
        _step(p50_ms=900.0, foreign_cores=0.1),
        _step(p50_ms=1500.0, failed_calls=1, errors=["timed out"], foreign_cores=0.6),
        _step(p50_ms=1000.0, worker_e2e_p50_ms=None),
    ]
    merged = load.median_step(runs)
    assert (merged.p50_ms, merged.worker_e2e_p50_ms) == (1000.0, 950.0)
    assert (merged.failed_calls, merged.errors, merged.turns) == (1, ["timed out"], 18)
    assert (merged.foreign_cores, merged.repeats, merged.calls) == (0.6, 3, 2)
    assert not load.within_bound(merged, max_overhead=300.0)


def test_a_busy_host_at_the_start_or_during_a_step_makes_the_run_not_clean() -> None:
    quiet = [_step(foreign_cores=0.1)]
    assert load.busy_reasons(0.3, quiet, max_load=0.5, max_foreign=0.2) == []
    assert load.busy_reasons(3.2, quiet, max_load=0.5, max_foreign=0.2) == [
        "load average 3.20 > 0.5 at the start"
    ]
    busy = [_step(calls=1, foreign_cores=0.1), _step(calls=4, foreign_cores=1.3)]
    assert load.busy_reasons(0.3, busy, max_load=0.5, max_foreign=0.2) == [
        "K=4: other processes used 1.30 cores"
    ]


def test_worker_cpus_read_as_lists_and_ranges() -> None:
    assert load.parse_cpus("1") == {1}
    assert load.parse_cpus("2-3,6") == {2, 3, 6}
