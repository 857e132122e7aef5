"""Worker task sizing and cost per call-minute on Fargate ARM, from the load benchmark's figures.

Reads CPU and PSS per live call from `bench/results/load.json` (or takes them as arguments),
prints calls per task for each Fargate size the template allows, the cost per call-minute, and
the template's memory mappings for those job counts.

    .venv/bin/python bench/sizing.py [--cpu-per-call 0.2] [--pss-per-call 145]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.json"

# Fargate Linux/ARM (us-east-1) on-demand prices.
VCPU_HOUR = 0.03238
GB_HOUR = 0.00356
# CPU a task may spend on calls: the rest is headroom so a busy task still meets the p95 bound.
CPU_TARGET = 0.75
# PSS outside the job processes (bench/worker_memory.py: main ~152, forkserver ~50) plus one
# process being replaced while its slot turns over (~91 idle).
FIXED_MB = 300
RESERVATION = 0.9  # MemoryReservation / Memory: 10% headroom under the hard limit
# A job's memory limit is at least this many times its measured PSS (audio buffers, a long call).
LIMIT_OVER_PSS = 1.7
# Task sizes the template offers: CPU units -> memory (MB) values Fargate pairs with them.
SIZES = {
    512: [2048, 3072, 4096],
    1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
    2048: [4096, 5120, 6144, 7168, 8192],
    4096: [8192],
}


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory: int
    calls: int

    @property
    def hourly(self) -> float:
        return self.cpu / 1024 * VCPU_HOUR + self.memory / 1024 * GB_HOUR

    @property
    def per_call_minute(self) -> float:
        return self.hourly / self.calls / 60 if self.calls else math.inf


def calls_by_cpu(cpu_units: int, cpu_per_call: float) -> int:
    return math.floor(cpu_units / 1024 * CPU_TARGET / cpu_per_call + 1e-9)


def job_limit(memory: int, jobs: int) -> int:
    """Per-job memory limit for `jobs` calls in a task of `memory` MB, rounded down to 10 MB."""
    reservation = math.floor(memory * RESERVATION / 10) * 10
    return (reservation - FIXED_MB) // jobs // 10 * 10


def calls_by_memory(memory: int, pss_per_call: float) -> int:
    jobs = 0
    while job_limit(memory, jobs + 1) >= pss_per_call * LIMIT_OVER_PSS:
        jobs += 1
    return jobs


def sizes(cpu_per_call: float, pss_per_call: float) -> list[TaskSize]:
    return [
        TaskSize(
            cpu,
            memory,
            min(calls_by_cpu(cpu, cpu_per_call), calls_by_memory(memory, pss_per_call)),
        )
        for cpu, memories in SIZES.items()
        for memory in memories
    ]


def measured() -> tuple[float, float]:
    """CPU and PSS per call at the largest K of the last load run that had no failure."""
    steps = json.loads(RESULTS.read_text())["steps"]
    usable = [
        s
        for s in steps
        if s["cpu_cores_per_call"]
        and s["pss_mb_per_call"]
        and not (s["failed_turns"] or s["failed_calls"])
    ]
    last = usable[-1]
    return float(last["cpu_cores_per_call"]), float(last["pss_mb_per_call"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-per-call", type=float, help="cores; default: load.json")
    parser.add_argument("--pss-per-call", type=float, help="MB; default: load.json")
    parser.add_argument("--max-jobs", type=int, default=16, help="largest WorkerMaxJobs to map")
    args = parser.parse_args()
    cpu, pss = args.cpu_per_call, args.pss_per_call
    if cpu is None or pss is None:
        m_cpu, m_pss = measured()
        cpu, pss = cpu or m_cpu, pss or m_pss
    print(f"per live call: {cpu:.3f} cores, {pss:.0f} MB PSS; CPU target {CPU_TARGET:.0%}")
    print(f"{'cpu':>5} {'memory':>7} {'calls':>5} {'$/hour':>8} {'$/call-minute':>14}")
    table = sizes(cpu, pss)
    for t in table:
        print(f"{t.cpu:>5} {t.memory:>7} {t.calls:>5} {t.hourly:>8.4f} {t.per_call_minute:>14.6f}")
    best = min((t for t in table if t.calls), key=lambda t: (t.per_call_minute, t.cpu, t.memory))
    print(
        f"cheapest per call: {best.cpu} CPU units / {best.memory} MB, {best.calls} calls, "
        f"${best.per_call_minute:.6f} per call-minute"
    )
    print("\nMax jobs by CPU units (rules):")
    for cpu_units in SIZES:
        print(f"  {cpu_units}: {calls_by_cpu(cpu_units, cpu)}")
    print("\nWorkerJobMemoryLimit / Warn rows (MB):")
    memories = sorted({m for ms in SIZES.values() for m in ms})
    jobs = range(1, args.max_jobs + 1)
    for name, factor in (("WorkerJobMemoryLimit", 1.0), ("WorkerJobMemoryWarn", 0.8)):
        print(f"  {name}:")
        for memory in memories:
            cells = ", ".join(
                f'"{j}": {math.floor(job_limit(memory, j) * factor / 10) * 10}' for j in jobs
            )
            print(f'    "{memory}": {{{cells}}}')


if __name__ == "__main__":
    main()
