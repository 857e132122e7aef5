"""Load benchmark: K concurrent callers on the local stack, latency, CPU and memory per live call.

Each caller is a real LiveKit participant created through `POST /session`; it hears the
greeting, asks `--turns` questions in espeak-ng speech with pauses between them, then hangs up.
The models are the deterministic test server with optional provider delays. For each K: caller-
heard latency (end of speech -> first agent audio frame), the part of it that is neither the
configured waits nor model time ("overhead"), failures, create -> agent-joined, and the worker
process tree's CPU and PSS per live call. The sweep stops at the first K with a failure or an
overhead p95 over `--max-overhead-ms`.

Figures a host cannot blur: `--worker-cpus` pins the worker's process tree to those CPUs and
everything else (callers, LiveKit, the API, the model server) to the others; each K runs
`--repeat` times (medians of the runs); the CPU the rest of the host used during each step is
measured, and a run on a busy host (load average at the start over `--max-load`, or other
processes using more than `--max-foreign` cores during a step) is reported as not clean.

    .venv/bin/python bench/load.py --calls 1,2,4,6 [--turns 3] [--llm-ttft-ms 300 ...]
        [--worker-cpus 1] [--repeat 3]
        [--set voice.realtime.turn_detection.min_endpointing_delay=0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.paths import CONFIG_FILE  # noqa: E402
from infra.local.stack import HOST, LocalStack, StackOptions, free_port  # noqa: E402
from tests.support.caller import Caller, speech  # noqa: E402
from tests.support.fake_openai import QUESTION, Latency  # noqa: E402
from tests.support.stack import API, session_report  # noqa: E402
from voice.config import parse_config  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TURN_TIMEOUT = 20.0
# The library logs loop blocks from this length on (its default is 100 ms); job records only.
LOOP_WARN_MS = 20
_BLOCKED = re.compile(r"event loop blocked for (\d+)ms")


# -- one call ----------------------------------------------------------------------------------


@dataclass
class CallResult:
    session_id: str | None = None
    join_ms: float | None = None
    heard_ms: list[float] = field(default_factory=list)
    failed_turns: int = 0
    error: str | None = None


class TimedCaller(Caller):
    """A caller that also notes when the agent joined."""

    agent_joined_at: float | None = None

    def _on_connected(self, participant: Any) -> None:
        super()._on_connected(participant)
        if self.agents_joined and self.agent_joined_at is None:
            self.agent_joined_at = time.monotonic()


@dataclass
class Progress:
    calls: int = 0
    live: int = 0
    turns_done: int = 0
    turns_total: int = 0
    failed_turns: int = 0


async def one_call(
    api: httpx.AsyncClient, turns: int, rng: random.Random, progress: Progress
) -> CallResult:
    result = CallResult()
    caller = TimedCaller()
    created_at = time.monotonic()
    try:
        resp = await api.post(
            "/session", json={"agent_type": "single_agent", "initial_greeting": True}
        )
        resp.raise_for_status()
        created = resp.json()
        result.session_id = created["session_id"]
        await caller.join(created["url"], created["token"])
        joined = time.monotonic()
        await caller.wait_for_voice(after=joined, timeout=30)
        if caller.agent_joined_at is not None:
            result.join_ms = (caller.agent_joined_at - created_at) * 1000
        progress.live += 1
        try:
            await caller.wait_for_quiet(quiet=0.8, timeout=30)
            question = speech(QUESTION)
            for _ in range(turns):
                spoke = await caller.say(question)
                try:
                    heard = await caller.wait_for_voice(after=spoke, timeout=TURN_TIMEOUT)
                    result.heard_ms.append((heard - spoke) * 1000)
                    await caller.wait_for_quiet(quiet=0.8, timeout=30)
                except AssertionError:
                    result.failed_turns += 1
                    progress.failed_turns += 1
                progress.turns_done += 1
                await asyncio.sleep(rng.uniform(0.3, 1.0))  # the caller thinks a moment
        finally:
            progress.live -= 1
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await caller.leave()
    return result


# -- the worker's process tree -----------------------------------------------------------------


@dataclass
class Sample:
    at: float
    cpu_cores: float  # CPU seconds per second over the last interval, whole tree
    live_calls: int
    pss_mb: dict[int, float]  # job process pid -> PSS
    job_cpu: dict[int, float]  # job process pid -> cores over the last interval


class TreeSampler(threading.Thread):
    """Samples the worker's process tree twice a second: CPU (cores) and each job process's PSS."""

    def __init__(
        self,
        root_pid: int,
        progress: Progress,
        interval: float = 0.5,
        cpus: set[int] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="tree-sampler")
        self.root = psutil.Process(root_pid)
        self.progress = progress
        self.interval = interval
        # With pinning: the job processes seen running anywhere else (none, or it did not hold).
        self.cpus = cpus
        self.unpinned: set[int] = set()
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._last: dict[int, float] = {}
        self._last_at = time.monotonic()

    def job_pids(self) -> set[int]:
        """Job processes: the forkserver's children (the main process and forkserver excluded)."""
        pids: set[int] = set()
        for child in self.root.children(recursive=True):
            try:
                if "forkserver" in " ".join(child.cmdline()):
                    pids.update(p.pid for p in child.children())
            except psutil.Error:
                continue
        return pids

    def _take(self) -> Sample:
        now = time.monotonic()
        cpu: dict[int, float] = {}
        pss: dict[int, float] = {}
        jobs = self.job_pids()
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                cpu[proc.pid] = t.user + t.system
                if proc.pid in jobs:
                    pss[proc.pid] = proc.memory_full_info().pss / 2**20
                    if self.cpus and set(proc.cpu_affinity()) != self.cpus:
                        self.unpinned.add(proc.pid)
            except psutil.Error:
                continue
        dt = max(now - self._last_at, 1e-3)
        deltas = {pid: (c - self._last.get(pid, c)) / dt for pid, c in cpu.items()}
        self._last, self._last_at = cpu, now
        return Sample(
            at=now,
            cpu_cores=sum(deltas.values()),
            live_calls=self.progress.live,
            pss_mb=pss,
            job_cpu={pid: d for pid, d in deltas.items() if pid in jobs},
        )

    def run(self) -> None:
        self._take()
        while not self._halt.wait(self.interval):
            self.samples.append(self._take())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def parse_cpus(text: str) -> set[int]:
    """`1`, `2,3` or `2-3` as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def pin_tree(pid: int, cpus: set[int]) -> list[int]:
    """Pins a process and its descendants (later ones inherit it); returns the pids pinned."""
    root = psutil.Process(pid)
    pinned = []
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            proc.cpu_affinity(sorted(cpus))
            pinned.append(proc.pid)
    return pinned


def own_cpu_seconds() -> float:
    """CPU seconds used by this process and its descendants, ended ones included."""
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def host_busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclass
class HostMeter:
    """The cores the rest of the host (not this benchmark's processes) used since `start`."""

    at: float = field(default_factory=time.monotonic)
    host: float = field(default_factory=host_busy_seconds)
    own: float = field(default_factory=own_cpu_seconds)

    def foreign_cores(self) -> float:
        elapsed = max(time.monotonic() - self.at, 1e-3)
        foreign = (host_busy_seconds() - self.host) - (own_cpu_seconds() - self.own)
        return max(foreign, 0.0) / elapsed


# -- one step of the sweep ---------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def loop_blocks_ms(log: Path, offset: int) -> list[float]:
    """Loop blocks the library logged in job processes since `offset`."""
    blocks = []
    with log.open("rb") as f:
        f.seek(offset)
        for line in f.read().decode(errors="replace").splitlines():
            if '"job_id"' in line and (m := _BLOCKED.search(line)):
                blocks.append(float(m.group(1)))
    return blocks


async def slots_released(stack: LocalStack, timeout: float = 60.0) -> float | None:
    """Milliseconds until the worker's /worker reports no active job, polled every 100 ms."""
    started = time.monotonic()
    url = f"http://{HOST}:{stack.opts.worker_health_port}/worker"
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() - started < timeout:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if (await http.get(url)).json().get("active_jobs", 0) == 0:
                    return (time.monotonic() - started) * 1000
            await asyncio.sleep(0.1)
    return None


TURN_FIELDS = ("end_of_utterance_delay_ms", "llm_ttft_ms", "tts_ttfb_ms", "end_to_end_ms")


async def worker_turns(stack: LocalStack, session_ids: list[str]) -> dict[str, list[float]]:
    """Per-turn figures from the session reports (written as each job ends) of answered turns."""
    deadline = time.monotonic() + 15
    reports: dict[str, dict[str, Any]] = {}
    while len(reports) < len(session_ids) and time.monotonic() < deadline:
        for sid in session_ids:
            if sid not in reports and (report := session_report(stack, sid)) is not None:
                reports[sid] = report
        await asyncio.sleep(0.5)
    turns = [
        t
        for r in reports.values()
        for t in r.get("turns", [])
        if t.get("end_of_utterance_delay_ms") is not None
    ]
    return {f: [t[f] for t in turns if t.get(f) is not None] for f in TURN_FIELDS}


@dataclass
class StepResult:
    calls: int
    p50_ms: float | None
    p95_ms: float | None
    overhead_p50_ms: float | None
    overhead_p95_ms: float | None
    failed_turns: int
    failed_calls: int
    join_p50_ms: float | None
    join_p95_ms: float | None
    cpu_cores_per_call: float | None
    pss_mb_per_call: float | None
    loop_lag_max_ms: float | None
    # Last caller hung up -> the worker reports no active job (every slot free again).
    release_ms: float | None
    # The worker's own view of the same turns (session reports), medians.
    worker_eou_p50_ms: float | None
    worker_llm_ttft_p50_ms: float | None
    worker_tts_ttfb_p50_ms: float | None
    worker_e2e_p50_ms: float | None
    turns: int
    idle_cpu_cores: float
    errors: list[str]
    # Cores the rest of the host used during the step, and the 1-minute load at its start.
    foreign_cores: float = 0.0
    load_avg_1m: float = 0.0
    repeats: int = 1


async def wait_idle(sampler: TreeSampler, timeout: float) -> None:
    """Waits until no job process uses CPU: the previous step's calls have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [s for s in sampler.samples[-4:] if any(c > 0.05 for c in s.job_cpu.values())]
        if len(sampler.samples) >= 4 and not busy:
            return
        await asyncio.sleep(0.5)


async def run_step(
    stack: LocalStack,
    k: int,
    turns: int,
    floor_ms: float,
    sampler: TreeSampler,
    progress: Progress,
    seed: int,
) -> StepResult:
    meter = HostMeter()
    load_at_start = os.getloadavg()[0]
    log = stack.log_path("worker")
    offset = log.stat().st_size
    idle = [s.cpu_cores for s in sampler.samples[-6:]]
    idle_cpu = statistics.median(idle) if idle else 0.0
    first_sample = len(sampler.samples)
    progress.calls, progress.turns_done, progress.turns_total = k, 0, k * turns
    progress.failed_turns = 0
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(base_url=stack.api_url + API, headers=headers, timeout=30) as api:
        results = await asyncio.gather(
            *(one_call(api, turns, random.Random(seed + i), progress) for i in range(k))
        )
    release_ms = await slots_released(stack)
    samples = sampler.samples[first_sample:]
    heard = [h for r in results for h in r.heard_ms]
    overhead = [h - floor_ms for h in heard]
    joins = [r.join_ms for r in results if r.join_ms is not None]

    live = [s for s in samples if s.live_calls > 0]
    cpu_per_call = None
    if live:
        busy = sum(max(s.cpu_cores - idle_cpu, 0.0) for s in live)
        cpu_per_call = busy / sum(s.live_calls for s in live)
    # Each live call is one job process: the K busiest job processes of each full sample.
    pss: list[float] = []
    for s in samples:
        if s.live_calls == k:
            busiest = sorted(s.job_cpu, key=lambda pid: s.job_cpu[pid], reverse=True)[:k]
            pss.extend(s.pss_mb[pid] for pid in busiest if pid in s.pss_mb)
    blocks = loop_blocks_ms(log, offset)
    worker = await worker_turns(stack, [r.session_id for r in results if r.session_id])
    errors = [r.error for r in results if r.error]
    return StepResult(
        calls=k,
        p50_ms=pct(heard, 0.5),
        p95_ms=pct(heard, 0.95),
        overhead_p50_ms=pct(overhead, 0.5),
        overhead_p95_ms=pct(overhead, 0.95),
        failed_turns=sum(r.failed_turns for r in results),
        failed_calls=len(errors),
        join_p50_ms=pct(joins, 0.5),
        join_p95_ms=pct(joins, 0.95),
        cpu_cores_per_call=cpu_per_call,
        pss_mb_per_call=statistics.median(pss) if pss else None,
        loop_lag_max_ms=max(blocks) if blocks else 0.0,
        release_ms=release_ms,
        worker_eou_p50_ms=pct(worker["end_of_utterance_delay_ms"], 0.5),
        worker_llm_ttft_p50_ms=pct(worker["llm_ttft_ms"], 0.5),
        worker_tts_ttfb_p50_ms=pct(worker["tts_ttfb_ms"], 0.5),
        worker_e2e_p50_ms=pct(worker["end_to_end_ms"], 0.5),
        turns=len(heard),
        idle_cpu_cores=idle_cpu,
        errors=errors,
        foreign_cores=meter.foreign_cores(),
        load_avg_1m=load_at_start,
    )


def median_step(runs: list[StepResult]) -> StepResult:
    """One K's repeated runs as one row: medians of the figures, failures and errors summed."""
    if len(runs) == 1:
        return runs[0]
    merged: dict[str, Any] = {}
    for name, value in asdict(runs[0]).items():
        values = [getattr(r, name) for r in runs]
        if name in ("failed_turns", "failed_calls", "turns"):
            merged[name] = sum(values)
        elif name == "errors":
            merged[name] = [e for v in values for e in v]
        elif name == "foreign_cores":
            merged[name] = max(values)
        elif isinstance(value, float | int) or value is None:
            present = [v for v in values if v is not None]
            merged[name] = statistics.median(present) if present else None
        else:
            merged[name] = value
    merged["calls"] = runs[0].calls
    merged["repeats"] = len(runs)
    return StepResult(**merged)


# -- set-up ------------------------------------------------------------------------------------


def set_key(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def bench_config(max_calls: int, overrides: list[str]) -> dict[str, Any]:
    """The repo config, sized for `max_calls` on one worker, plus `--set` overrides."""
    config = yaml.safe_load(CONFIG_FILE.read_text())
    set_key(config, "voice.realtime.worker.max_jobs", max_calls)
    set_key(config, "voice.realtime.limits.max_sessions_per_user", max_calls + 5)
    for item in overrides:
        key, _, raw = item.partition("=")
        set_key(config, key, yaml.safe_load(raw))
    parse_config(yaml.safe_dump(config), source="bench")  # fails early with the key path
    return config


def configured_wait_ms(config: dict[str, Any]) -> float:
    """The wait the config imposes after speech ends before a reply may start.

    The library back-dates the end of speech by the VAD's silence and counts the endpointing
    delay from there, so the two overlap: the wait is the longer of them.
    """
    realtime = parse_config(yaml.safe_dump(config), source="bench").realtime
    silence = realtime.vad.min_silence_duration
    return max(silence, realtime.turn_detection.min_endpointing_delay) * 1000


def start_fake_models(run_dir: Path, latency: Latency) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "tests.support.fake_openai",
        "--port",
        str(port),
        "--stt-ms",
        str(latency.stt * 1000),
        "--llm-ttft-ms",
        str(latency.llm_ttft * 1000),
        "--tts-ttfb-ms",
        str(latency.tts_ttfb * 1000),
    ]
    log = (run_dir / "fake-openai.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/v1/models", timeout=1).raise_for_status()
            return proc, url + "/v1"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the fake model server did not start")


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_avg_1m_at_start": os.getloadavg()[0],
    }


# -- output ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(steps: list[StepResult]) -> str:
    head = (
        f"{'K':>3} {'p50':>6} {'p95':>6} {'ovh50':>6} {'ovh95':>6} {'fail t/c':>8} "
        f"{'join50':>7} {'join95':>7} {'cpu/call':>8} {'pss/call':>8} {'lag max':>7} "
        f"{'eou':>5} {'w.e2e':>6} {'free':>5} {'others':>6}"
    )
    rows = [head, "-" * len(head)]
    for s in steps:
        rows.append(
            f"{s.calls:>3} {fmt(s.p50_ms):>6} {fmt(s.p95_ms):>6} {fmt(s.overhead_p50_ms):>6} "
            f"{fmt(s.overhead_p95_ms):>6} {f'{s.failed_turns}/{s.failed_calls}':>8} "
            f"{fmt(s.join_p50_ms):>7} {fmt(s.join_p95_ms):>7} "
            f"{fmt(s.cpu_cores_per_call, 3):>8} {fmt(s.pss_mb_per_call):>8} "
            f"{fmt(s.loop_lag_max_ms):>7} {fmt(s.worker_eou_p50_ms):>5} "
            f"{fmt(s.worker_e2e_p50_ms):>6} {fmt(s.release_ms):>5} {fmt(s.foreign_cores, 2):>6}"
        )
    return "\n".join(rows)


def markdown(summary: dict[str, Any]) -> str:
    """The run as docs/performance.md shows it: what, when, where, how busy; then the table."""
    info = summary["machine"]
    verdict = "clean" if summary["clean"] else "not clean: " + "; ".join(summary["busy"])
    lines = [
        f"{summary['date']}, {summary['label'] or 'defaults'}, worker CPUs "
        f"{summary['worker_cpus'] or 'not pinned'}, {summary['repeat']} run(s) per K, "
        f"{summary['turns_per_call']} turns per call, {info['cpus']} CPUs ({info['cpu_model']}), "
        f"load {info['load_avg_1m_at_start']:.1f} at the start / "
        f"{info['load_avg_1m_at_end']:.1f} at the end, {verdict}; {summary['elapsed_s']:.0f} s",
        "",
        "| K | heard p50 / p95 ms | overhead p50 / p95 ms | failed turns / calls | join p50 ms "
        "| CPU cores per call | PSS MB per call | worst loop block ms | worker EOU / e2e p50 ms "
        "| slots free after ms | others (cores) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summary["steps"]:
        lines.append(
            f"| {s['calls']} | {fmt(s['p50_ms'])} / {fmt(s['p95_ms'])} "
            f"| {fmt(s['overhead_p50_ms'])} / {fmt(s['overhead_p95_ms'])} "
            f"| {s['failed_turns']} / {s['failed_calls']} | {fmt(s['join_p50_ms'])} "
            f"| {fmt(s['cpu_cores_per_call'], 3)} | {fmt(s['pss_mb_per_call'])} "
            f"| {fmt(s['loop_lag_max_ms'])} "
            f"| {fmt(s['worker_eou_p50_ms'])} / {fmt(s['worker_e2e_p50_ms'])} "
            f"| {fmt(s['release_ms'])} | {fmt(s['foreign_cores'], 2)} |"
        )
    return "\n".join(lines) + "\n"


def plot_title(summary: dict[str, Any]) -> str:
    info = summary["machine"]
    pinned = f", worker on CPUs {summary['worker_cpus']}" if summary.get("worker_cpus") else ""
    verdict = "clean" if summary.get("clean") else "NOT CLEAN (busy host)"
    return (
        f"{summary['date'][:16]}Z, {info['cpus']} CPUs{pinned}, {summary['label'] or 'defaults'}\n"
        f"load {info['load_avg_1m_at_start']:.1f} at start, {verdict}, "
        f"medians of {summary.get('repeat', 1)} runs per K"
    )


def replot(path: Path, png: Path) -> None:
    """The plot of a stored run again (e.g. after a change of the plot)."""
    summary = json.loads(path.read_text())
    plot([StepResult(**s) for s in summary["steps"]], png, plot_title(summary))


def plot(steps: list[StepResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [s.calls for s in steps]
    fig, left = plt.subplots(figsize=(7, 4))
    for attr, label in (("p50_ms", "heard p50"), ("p95_ms", "heard p95")):
        left.plot(ks, [getattr(s, attr) for s in steps], marker="o", label=label)
    for attr, label in (("overhead_p50_ms", "overhead p50"), ("overhead_p95_ms", "overhead p95")):
        left.plot(ks, [getattr(s, attr) for s in steps], marker="o", ls="--", label=label)
    left.set_xlabel("concurrent calls")
    left.set_ylabel("ms (end of caller speech -> first agent audio)")
    right = left.twinx()
    right.plot(ks, [s.cpu_cores_per_call for s in steps], color="k", marker="s", label="cpu/call")
    right.set_ylabel("CPU cores per live call")
    right.set_ylim(bottom=0)
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, fontsize=8, loc="upper left")
    left.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- main --------------------------------------------------------------------------------------


def busy_reasons(
    load_at_start: float, steps: list[StepResult], max_load: float, max_foreign: float
) -> list[str]:
    """Why a run is not clean (empty: it is): a busy host at the start or during a step."""
    reasons = []
    if load_at_start > max_load:
        reasons.append(f"load average {load_at_start:.2f} > {max_load} at the start")
    reasons += [
        f"K={s.calls}: other processes used {s.foreign_cores:.2f} cores"
        for s in steps
        if s.foreign_cores > max_foreign
    ]
    return reasons


def within_bound(step: StepResult, max_overhead: float) -> bool:
    over = step.overhead_p95_ms is not None and step.overhead_p95_ms > max_overhead
    return not (step.failed_turns or step.failed_calls or over)


async def sweep(
    stack: LocalStack, args: argparse.Namespace, floor_ms: float, progress: Progress
) -> tuple[list[StepResult], int]:
    """The steps, and how many job processes were seen outside `--worker-cpus`."""
    worker_pid = stack.procs["worker"].pid
    if args.worker_cpus:
        pinned = pin_tree(worker_pid, args.worker_cpus)
        print(f"  worker tree ({len(pinned)} processes) pinned to CPUs {sorted(args.worker_cpus)}")
    sampler = TreeSampler(worker_pid, progress, cpus=args.worker_cpus)
    sampler.start()
    steps: list[StepResult] = []
    started = time.monotonic()

    async def show() -> None:
        while True:
            sys.stderr.write(
                f"\r  K={progress.calls}: {progress.live}/{progress.calls} calls live, "
                f"turns {progress.turns_done}/{progress.turns_total}, "
                f"failed {progress.failed_turns}, {time.monotonic() - started:4.0f} s   "
            )
            sys.stderr.flush()
            await asyncio.sleep(1)

    ticker = asyncio.create_task(show())
    try:
        for i, k in enumerate(args.calls):
            runs = []
            for r in range(args.repeat):
                await wait_idle(sampler, timeout=60)
                seed = 1000 * i + 100 * r
                runs.append(await run_step(stack, k, args.turns, floor_ms, sampler, progress, seed))
            step = median_step(runs)
            steps.append(step)
            sys.stderr.write("\n")
            print(table(steps[-1:]).splitlines()[-1], flush=True)
            if not within_bound(step, args.max_overhead):
                why = "failures" if step.failed_turns or step.failed_calls else "overhead p95"
                if not args.keep_going:
                    print(f"  stopping at K={k}: {why}", flush=True)
                    break
                print(f"  K={k} is past the bound ({why}); --keep-going", flush=True)
    finally:
        ticker.cancel()
        sampler.stop()
    return steps, len(sampler.unpinned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,2,4,6", help="concurrent calls per step")
    parser.add_argument("--turns", type=int, default=3, help="questions per call")
    parser.add_argument("--stt-ms", type=float, default=0.0)
    parser.add_argument("--llm-ttft-ms", type=float, default=0.0)
    parser.add_argument("--tts-ttfb-ms", type=float, default=0.0)
    parser.add_argument("--max-overhead", type=float, default=300.0, help="p95 bound, ms")
    parser.add_argument(
        "--keep-going", action="store_true", help="measure every K, past the bound too"
    )
    parser.add_argument("--set", action="append", default=[], help="config key=value (repeat)")
    parser.add_argument("--out", default=str(RESULTS / "load.json"))
    parser.add_argument("--png", default=str(RESULTS / "load.png"))
    parser.add_argument("--run-dir", help="keep the stack's logs and reports here")
    parser.add_argument("--label", default="", help="what this run varies (kept in the JSON)")
    parser.add_argument(
        "--worker-cpus", type=parse_cpus, help="pin the worker here (e.g. 1 or 2-3), rest elsewhere"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per K (medians reported)")
    parser.add_argument(
        "--max-load", type=float, default=0.5, help="1-minute load average a clean run starts under"
    )
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.2,
        help="cores other processes may use during a step of a clean run",
    )
    parser.add_argument(
        "--replot", help="only draw --png and write the .md table again from this stored JSON"
    )
    args = parser.parse_args()
    if args.replot:
        replot(Path(args.replot), Path(args.png))
        stored = json.loads(Path(args.replot).read_text())
        Path(args.replot).with_suffix(".md").write_text(markdown(stored))
        return
    args.calls = [int(k) for k in args.calls.split(",")]
    if args.worker_cpus:
        others = os.sched_getaffinity(0) - args.worker_cpus
        if not others or not args.worker_cpus <= os.sched_getaffinity(0):
            parser.error(f"--worker-cpus must leave CPUs for the rest, of {os.cpu_count()}")
        # Every process this benchmark starts (LiveKit, API, callers...) inherits this.
        os.sched_setaffinity(0, others)

    latency = Latency(args.stt_ms / 1000, args.llm_ttft_ms / 1000, args.tts_ttfb_ms / 1000)
    config = bench_config(max(args.calls), args.set)
    floor_ms = configured_wait_ms(config) + latency.total * 1000
    info = machine()
    print(
        f"load bench: calls {args.calls}, {args.turns} turns each, model delays "
        f"stt {args.stt_ms:.0f} / llm {args.llm_ttft_ms:.0f} / tts {args.tts_ttfb_ms:.0f} ms, "
        f"overhead = heard - {floor_ms:.0f} ms; {info['cpus']} CPUs ({info['cpu_model']}), "
        f"load {info['load_avg_1m_at_start']:.1f}",
        flush=True,
    )
    print(table([]), flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run_dir or tmp)
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "voice_config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        fake, base_url = start_fake_models(run_dir, latency)
        try:
            options = StackOptions.on_free_ports(
                run_dir,
                config_uri=str(config_path),
                reaper_interval=0,
                worker_env={
                    "OPENAI_BASE_URL": base_url,
                    "OPENAI_API_KEY": "sk-fake",
                    "LIVEKIT_AGENTS_LOOP_BLOCK_WARN_MS": str(LOOP_WARN_MS),
                },
            )
            with LocalStack(options) as stack:
                progress = Progress()
                steps, unpinned = asyncio.run(sweep(stack, args, floor_ms, progress))
        finally:
            fake.terminate()
            fake.wait(timeout=10)

    passing = []
    for s in steps:  # the bound holds up to the first K that breaks it
        if not within_bound(s, args.max_overhead):
            break
        passing.append(s)
    density = None
    if passing and passing[-1].cpu_cores_per_call:
        density = 1 / passing[-1].cpu_cores_per_call
    # What CPU alone would allow, from the largest K measured: the figure to compare when the
    # latency bound is broken by this shared machine rather than by the worker's own CPU.
    measured = [s for s in steps if s.cpu_cores_per_call]
    cpu_density = 1 / measured[-1].cpu_cores_per_call if measured else None
    info["load_avg_1m_at_end"] = os.getloadavg()[0]
    busy = busy_reasons(info["load_avg_1m_at_start"], steps, args.max_load, args.max_foreign)
    if unpinned:
        busy.append(f"{unpinned} job processes ran outside the worker CPUs")
    worker_cpus = sorted(args.worker_cpus or [])
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "label": args.label,
        "turns_per_call": args.turns,
        "model_delays_ms": {
            "stt": args.stt_ms,
            "llm_ttft": args.llm_ttft_ms,
            "tts": args.tts_ttfb_ms,
        },
        "config_overrides": args.set,
        "worker_cpus": worker_cpus,
        "repeat": args.repeat,
        "clean": not busy,
        "busy": busy,
        # Pinned: the most calls the worker's own CPUs held within the bound, per CPU.
        "calls_per_vcpu_pinned": (
            passing[-1].calls / len(worker_cpus) if worker_cpus and passing else None
        ),
        "configured_wait_ms": configured_wait_ms(config),
        "max_overhead_p95_ms": args.max_overhead,
        "max_calls_within_bound": passing[-1].calls if passing else 0,
        "calls_per_vcpu": density,
        "calls_per_vcpu_by_cpu_alone": cpu_density,
        "elapsed_s": round(time.monotonic() - began, 1),
        "steps": [asdict(s) for s in steps],
    }
    print()
    print(table(steps))
    if density is not None:
        print(
            f"concurrent calls per vCPU within the bound: {density:.1f} "
            f"(1 / CPU per call at K={passing[-1].calls}; this machine ran "
            f"{passing[-1].calls} at once)"
        )
    else:
        print("no K stayed within the bound on this machine")
    if cpu_density is not None:
        print(
            f"CPU alone: {cpu_density:.1f} calls per vCPU "
            f"(1 / CPU per call at K={measured[-1].calls})"
        )
    if worker_cpus and passing:
        print(
            f"pinned: {passing[-1].calls} calls within the bound on {len(worker_cpus)} worker "
            f"CPU(s) = {summary['calls_per_vcpu_pinned']:.1f} calls per vCPU"
        )
    if busy:
        print("NOT CLEAN (the host was busy): " + "; ".join(busy))
    else:
        print("clean: the host was quiet")
    print(f"elapsed {summary['elapsed_s']:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(summary))
    if steps:
        plot(steps, Path(args.png), plot_title(summary))
    print(f"wrote {out}, {out.with_suffix('.md')} and {args.png}")


if __name__ == "__main__":
    main()
