"""Measures each latency lever with `bench/load.py`, against a baseline run in the same session.

The machine may be shared, so every lever runs right after its own baseline and the result is
given as the change of medians against it, not as absolute figures alone.

    .venv/bin/python bench/levers.py [--calls 1] [--turns 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TD = "voice.realtime.turn_detection"
DELAYS = ["--stt-ms", "200", "--llm-ttft-ms", "300", "--tts-ttfb-ms", "200"]

# (name, extra load.py arguments); each is compared with the baseline that has the same delays.
LEVERS: list[tuple[str, list[str], list[str]]] = [
    ("preemptive generation off", [], ["--set", f"{TD}.preemptive_generation=false"]),
    (
        "preemptive generation off, provider delays",
        DELAYS,
        [*DELAYS, "--set", f"{TD}.preemptive_generation=false"],
    ),
    ("preemptive TTS on, provider delays", DELAYS, [*DELAYS, "--set", f"{TD}.preemptive_tts=true"]),
    (
        "VAD silence 0.55 -> 0.3 s",
        [],
        ["--set", "voice.realtime.vad.min_silence_duration=0.3"],
    ),
    (
        "VAD silence 0.3 s + endpointing 0.3 s",
        [],
        [
            "--set",
            "voice.realtime.vad.min_silence_duration=0.3",
            "--set",
            f"{TD}.min_endpointing_delay=0.3",
        ],
    ),
]


def run(args: list[str], calls: str, turns: int, label: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "load.json"
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--calls",
            calls,
            "--turns",
            str(turns),
            "--max-overhead",
            "100000",
            "--out",
            str(out),
            "--png",
            str(Path(tmp) / "load.png"),
            "--label",
            label,
            *args,
        ]
        subprocess.run(
            cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return dict(json.loads(out.read_text()))


def step(result: dict[str, Any]) -> dict[str, Any]:
    return dict(result["steps"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "levers.json"))
    args = parser.parse_args()

    rows = []
    print(f"{'lever':<44} {'heard p50':>10} {'baseline':>9} {'change':>7} {'ovh p50':>8}")
    for name, base_args, lever_args in LEVERS:
        base = step(run(base_args, args.calls, args.turns, f"baseline for {name}"))
        lever = step(run(lever_args, args.calls, args.turns, name))
        change = None
        if lever["p50_ms"] is not None and base["p50_ms"] is not None:
            change = lever["p50_ms"] - base["p50_ms"]
        rows.append({"lever": name, "args": lever_args, "baseline": base, "lever_run": lever})
        print(
            f"{name:<44} {lever['p50_ms'] or 0:>10.0f} {base['p50_ms'] or 0:>9.0f} "
            f"{change or 0:>+7.0f} {lever['overhead_p50_ms'] or 0:>8.0f}",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
