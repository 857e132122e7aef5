"""Measures each latency lever with `bench/load.py`, against a baseline run in the same session.

The machine may be shared, so every lever runs right after its own baseline and the result is
given as the change of medians against it, not as absolute figures alone. The models answer
after real-model delays (STT 200 ms, LLM first token 300 ms, TTS first byte 200 ms) unless
`--instant`. The baseline is the repo's default config (`--levers previous-defaults`: the defaults before
streaming transcription and the 0.3 s VAD silence), plus any `--base key=value`.

    .venv/bin/python bench/levers.py [--levers previous-defaults] [--calls 1] [--turns 6]
        [--only streaming] [--instant]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TD = "voice.realtime.turn_detection"
VAD = "voice.realtime.vad"
STT = "voice.providers.openai.stt"
DELAYS = ["--stt-ms", "200", "--llm-ttft-ms", "300", "--tts-ttfb-ms", "200"]

# The previous defaults: per-utterance transcription, a VAD silence longer than the endpointing.
PREVIOUS = [f"{STT}.streaming=false", f"{VAD}.min_silence_duration=0.55"]

# Sets of (name, config changes against the baseline), and the baseline's own changes.
LEVER_SETS: dict[str, tuple[list[str], list[tuple[str, list[str]]]]] = {
    "defaults": (
        [],
        [
            ("per-utterance STT (streaming off)", [f"{STT}.streaming=false"]),
            ("VAD silence 0.3 -> 0.55 s", [f"{VAD}.min_silence_duration=0.55"]),
            ("VAD silence 0.3 -> 0.2 s", [f"{VAD}.min_silence_duration=0.2"]),
            ("endpointing 0.5 -> 0.3 s", [f"{TD}.min_endpointing_delay=0.3"]),
            ("preemptive TTS on", [f"{TD}.preemptive_tts=true"]),
            ("preemptive generation off", [f"{TD}.preemptive_generation=false"]),
        ],
    ),
    "previous-defaults": (
        PREVIOUS,
        [
            ("streaming STT", [f"{STT}.streaming=true"]),
            ("VAD silence 0.55 -> 0.3 s", [f"{VAD}.min_silence_duration=0.3"]),
            (
                "streaming STT + VAD silence 0.3 s",
                [f"{STT}.streaming=true", f"{VAD}.min_silence_duration=0.3"],
            ),
            (
                "streaming STT + VAD silence 0.2 s",
                [f"{STT}.streaming=true", f"{VAD}.min_silence_duration=0.2"],
            ),
            (
                "streaming STT + VAD 0.2 s + preemptive TTS",
                [
                    f"{STT}.streaming=true",
                    f"{VAD}.min_silence_duration=0.2",
                    f"{TD}.preemptive_tts=true",
                ],
            ),
            ("preemptive generation off", [f"{TD}.preemptive_generation=false"]),
        ],
    ),
}


def sets(changes: list[str]) -> list[str]:
    return [arg for change in changes for arg in ("--set", change)]


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
    return {
        **result["steps"][-1],
        "load_avg_1m": result["machine"]["load_avg_1m_at_start"],
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(summary: dict[str, Any]) -> str:
    """The lever table as docs/performance.md shows it."""

    def change(row: dict[str, Any], key: str) -> str:
        base, lever = row["baseline"][key], row["lever_run"][key]
        if base is None or lever is None:
            return f"{fmt(base)} → {fmt(lever)}"
        return f"{fmt(base)} → {fmt(lever)} ({lever - base:+.0f})"

    lines = [
        "| lever | heard p50 ms | worker EOU p50 ms | worker e2e p50 ms "
        "| LLM TTFT / TTS TTFB before → after | turns | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary["rows"]:
        b, lv = row["baseline"], row["lever_run"]
        lines.append(
            f"| {row['lever']} | {change(row, 'p50_ms')} "
            f"| {fmt(b['worker_eou_p50_ms'])} → {fmt(lv['worker_eou_p50_ms'])} "
            f"| {change(row, 'worker_e2e_p50_ms')} "
            f"| {fmt(b['worker_llm_ttft_p50_ms'])} / {fmt(b['worker_tts_ttfb_p50_ms'])} → "
            f"{fmt(lv['worker_llm_ttft_p50_ms'])} / {fmt(lv['worker_tts_ttfb_p50_ms'])} "
            f"| {b['turns']}/{lv['turns']} | {b['load_avg_1m']:.1f} / {lv['load_avg_1m']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--instant", action="store_true", help="models answer at once")
    parser.add_argument("--levers", choices=sorted(LEVER_SETS), default="defaults")
    parser.add_argument("--base", action="append", default=[], help="baseline key=value")
    parser.add_argument("--only", help="levers whose name contains this")
    parser.add_argument("--out", default=str(RESULTS / "levers.json"))
    args = parser.parse_args()

    delays = [] if args.instant else DELAYS
    base_changes, lever_set = LEVER_SETS[args.levers]
    args.base = [*base_changes, *args.base]
    base_args = [*delays, *sets(args.base)]
    levers = [lv for lv in lever_set if not args.only or args.only in lv[0]]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(
        f"levers, {started}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"delays {'none' if args.instant else 'stt 200 / llm 300 / tts 200 ms'}, "
        f"K={args.calls}, {args.turns} turns; baseline {args.base or 'defaults'}"
    )
    head = (
        f"{'lever':<44} {'heard p50':>9} {'base p50':>8} {'change':>7} "
        f"{'w.e2e':>6} {'base':>6} {'eou':>5} {'base':>5} {'load':>5}"
    )
    print(head, flush=True)
    rows = []
    for name, changes in levers:
        base = step(run(base_args, args.calls, args.turns, f"baseline for {name}"))
        lever = step(run([*base_args, *sets(changes)], args.calls, args.turns, name))
        change = None
        if lever["p50_ms"] is not None and base["p50_ms"] is not None:
            change = lever["p50_ms"] - base["p50_ms"]
        rows.append(
            {
                "lever": name,
                "changes": changes,
                "change_p50_ms": change,
                "baseline": base,
                "lever_run": lever,
            }
        )
        print(
            f"{name:<44} {fmt(lever['p50_ms']):>9} {fmt(base['p50_ms']):>8} "
            f"{'-' if change is None else f'{change:+.0f}':>7} "
            f"{fmt(lever['worker_e2e_p50_ms']):>6} {fmt(base['worker_e2e_p50_ms']):>6} "
            f"{fmt(lever['worker_eou_p50_ms']):>5} {fmt(base['worker_eou_p50_ms']):>5} "
            f"{base['load_avg_1m']:>5.1f}",
            flush=True,
        )
    summary = {
        "date": started,
        "cpus": os.cpu_count(),
        "model_delays": not args.instant,
        "calls": args.calls,
        "turns": args.turns,
        "levers": args.levers,
        "baseline_changes": args.base,
        "rows": rows,
    }
    out = Path(args.out)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(summary))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
