"""Where a call's CPU goes: one job process serving one call, profiled while it runs.

Runs `bench/load.py` for one call (extra arguments go to it, e.g. `--set key=value` to profile a
lever), finds the job process serving the call, and records, over `--seconds` of the call:

- the CPU of each of its threads by name (from /proc): the Python threads, and the native ones
  a Python profiler cannot see (the LiveKit FFI's WebRTC and Opus threads, ONNX Runtime's);
- a sampling profile of its Python threads with native frames (`py-spy record --native`),
  grouped into Opus, resampling, the VAD, the thinking-sound track, the FFI calls, and Python;
- a flame graph of that profile (SVG).

    .venv/bin/pip install py-spy   # not in the locks: a benchmark tool only
    .venv/bin/python bench/profile_call.py [--seconds 20] [--name before] [-- --set ...]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# (category, substrings of a frame): the first category any frame of a sample matches, looking
# from the innermost frame outwards.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("VAD (Silero, ONNX Runtime)", ("onnxruntime", "silero/", "OrtRun")),
    ("Opus encode / decode", ("opus",)),
    ("resampling", ("resampl", "soxr")),
    ("gain control (WebRTC APM)", ("apm.py", "AudioProcessingModule")),
    ("thinking-sound track", ("background_audio",)),
    ("transcriber I/O (openai/stt.py)", ("openai/stt.py",)),
    ("event-loop monitor", ("loop_monitor",)),
    ("audio frames (numpy, AudioFrame)", ("numpy", "audio_frame", "AudioByteStream", "rtc/utils")),
    ("FFI calls (livekit.rtc)", ("_ffi_client", "liblivekit_ffi", "rtc/")),
    ("agents pipeline, other", ("agents/",)),
    ("other (asyncio, libraries)", ("",)),
]


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds so far)."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def job_process(load: psutil.Process, timeout: float) -> psutil.Process:
    """The forkserver child that is busy: the job process serving the call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in load.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                parent = proc.parent()
                in_pool = parent is not None and "forkserver" in " ".join(parent.cmdline())
                if in_pool and proc.cpu_percent(interval=0.5) > 5:
                    return proc
        time.sleep(0.5)
    raise RuntimeError("no busy job process: did the call start?")


# A sample whose innermost frames are one of these is a thread waiting, not working.
IDLE = (
    "PyThread_acquire_lock",
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "epoll_wait",
    "sem_wait",
    "sem_timedwait",
    "nanosleep",
    "poll (libc",
    "select (libc",
    "futex",
)


def busy_stacks(folded: Path) -> list[tuple[str, int]]:
    """The folded stacks of samples in which the thread was working, not waiting."""
    stacks = []
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        inner = stack.split(";")[-3:]
        if not any(idle in frame for frame in inner for idle in IDLE):
            stacks.append((stack, int(n)))
    return stacks


def categorize(folded: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for stack, n in busy_stacks(folded):
        frames = stack.split(";")[::-1]
        total += n
        for name, needles in CATEGORIES:
            if any(needle in frame for frame in frames for needle in needles):
                counts[name] += n
                break
    return counts, total


def flame_svg(folded: Path, out: Path, title: str, width: int = 1200) -> None:
    """A flame graph of folded stacks (root at the bottom), plain SVG with hover titles."""
    tree: dict[str, Any] = {"n": 0, "kids": {}}
    for stack, n in busy_stacks(folded):
        node = tree
        node["n"] += n
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += n
    rows: list[tuple[int, float, float, str, int]] = []

    def walk(node: dict[str, Any], depth: int, x: float) -> int:
        deepest = depth
        for frame, kid in sorted(node["kids"].items()):
            w = kid["n"] / max(tree["n"], 1) * width
            if w >= 0.5:
                rows.append((depth, x, w, frame, kid["n"]))
                deepest = max(deepest, walk(kid, depth + 1, x))
            x += w
        return deepest

    depth = walk(tree, 0, 0.0) + 1
    h = 16
    height = depth * h + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<text x="4" y="16">{html.escape(title)} ({tree["n"]} samples)</text>',
    ]
    for d, x, w, frame, n in rows:
        y = height - (d + 1) * h
        hue = 20 + zlib.crc32(frame.split(" ")[0].encode()) % 40
        label = html.escape(frame if len(frame) * 6.5 < w else frame[: max(int(w / 6.5) - 2, 0)])
        pct = 100 * n / tree["n"]
        parts.append(
            f"<g><title>{html.escape(frame)} ({n} samples, {pct:.1f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h - 1}" '
            f'fill="hsl({hue},85%,60%)"/>'
            + (f'<text x="{x + 2:.1f}" y="{y + 12}">{label}</text>' if w > 20 else "")
            + "</g>"
        )
    parts.append("</svg>")
    out.write_text("\n".join(parts))


def recount(name: str) -> None:
    """The stored profile's categories and flame graph again (after a change of either)."""
    out = RESULTS / f"profile-{name}.json"
    summary = json.loads(out.read_text())
    folded = RESULTS / f"profile-{name}.folded"
    counts, total = categorize(folded)
    summary["python_samples"] = total
    summary["python_share"] = {n: c / max(total, 1) for n, c in counts.most_common()}
    flame_svg(
        folded,
        RESULTS / f"profile-{name}.svg",
        f"job process, one call, {summary['date'][:10]}, {name}",
    )
    out.write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to profile")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--name", default="call", help="names the output files")
    parser.add_argument("load_args", nargs="*", help="after --: more bench/load.py arguments")
    parser.add_argument("--recount", action="store_true", help="only re-read the stored profile")
    args = parser.parse_args()
    if args.recount:
        recount(args.name)
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        parser.error("py-spy is missing: .venv/bin/pip install py-spy")

    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_avg = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--calls",
            "1",
            "--turns",
            str(args.turns),
            "--max-overhead",
            "100000",
            "--out",
            f"{tmp}/load.json",
            "--png",
            f"{tmp}/load.png",
            *args.load_args,
        ]
        load = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            job = job_process(psutil.Process(load.pid), timeout=180)
            time.sleep(2.0)  # past the join and the greeting's start
            before, at = thread_cpu(job.pid), time.monotonic()
            folded = Path(tmp) / "folded.txt"
            record = ["record", "--native", "--pid", str(job.pid), "--rate", "200"]
            subprocess.run(
                [
                    spy,
                    *record,
                    "--duration",
                    str(int(args.seconds)),
                    "--format",
                    "raw",
                    "-o",
                    str(folded),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            after, elapsed = thread_cpu(job.pid), time.monotonic() - at
        finally:
            load.wait(timeout=600)
        by_thread: dict[str, float] = defaultdict(float)
        for tid, (name, cpu) in after.items():
            by_thread[name] += cpu - before.get(tid, (name, 0.0))[1]
        counts, total = categorize(folded)
        svg = RESULTS / f"profile-{args.name}.svg"
        flame_svg(folded, svg, f"job process, one call, {started[:10]}, {args.name}")
        shutil.copy(folded, RESULTS / f"profile-{args.name}.folded")

    cores = sum(by_thread.values()) / elapsed
    threads = sorted(by_thread.items(), key=lambda kv: -kv[1])
    print(
        f"profile {args.name}: {started}, {os.cpu_count()} CPUs, load {load_avg:.1f}; "
        f"job process {cores:.3f} cores over {elapsed:.0f} s"
    )
    print("CPU by thread (cores):")
    for name, cpu in threads:
        if cpu / elapsed >= 0.001:
            print(f"  {name:<28} {cpu / elapsed:.3f}")
    print(f"Python threads, busy samples by what they were doing ({total} samples):")
    for name, n in counts.most_common():
        print(f"  {name:<36} {100 * n / max(total, 1):5.1f}%")
    summary = {
        "date": started,
        "cpus": os.cpu_count(),
        "load_avg_1m_at_start": load_avg,
        "load_avg_1m_at_end": os.getloadavg()[0],
        "load_args": args.load_args,
        "seconds": elapsed,
        "job_cores": cores,
        "threads_cores": {n: c / elapsed for n, c in threads},
        "python_samples": total,
        "python_share": {n: c / max(total, 1) for n, c in counts.most_common()},
        "flame_graph": str(svg.relative_to(ROOT)),
    }
    out = RESULTS / f"profile-{args.name}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out} and {svg}")


if __name__ == "__main__":
    main()
