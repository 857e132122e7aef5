"""Prints RSS and PSS of the worker's main process and of one idle job process, two ways.

`ours`: the project's defaults (one idle process per slot, no end-of-turn model preload).
`library`: livekit-agents' production defaults (ceil(cpu) idle processes, model preloaded).

    .venv/bin/python bench/worker_memory.py            # uses .bin/livekit-server when present
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET  # noqa: E402
from infra.local.livekit import find_livekit_server  # noqa: E402
from infra.local.stack import HOST, free_port  # noqa: E402


def _mem_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB from /proc/<pid>/smaps_rollup."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            values[parts[0]] = int(parts[1]) / 1024
    return values["Rss:"], values["Pss:"]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def measure(label: str, env_extra: dict[str, str], lk_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "worker.log"
        env = {
            **os.environ,
            "LIVEKIT_URL": lk_url,
            "LIVEKIT_API_KEY": DEV_LIVEKIT_KEY,
            "LIVEKIT_API_SECRET": DEV_LIVEKIT_SECRET,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAGENTS_LIVEKIT_WORKER_PORT": str(free_port()),
            **env_extra,
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "start"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 90
            while b"process initialized" not in log.read_bytes():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                time.sleep(0.2)
            time.sleep(3.0)  # let the idle pool settle
            main_rss, main_pss = _mem_mb(proc.pid)
            forkserver = [c for c in _children(proc.pid) if "forkserver" in _cmdline(c)]
            jobs = [j for f in forkserver for j in _children(f)]
            print(f"[{label}] {' '.join(f'{k}={v}' for k, v in env_extra.items())}")
            print(f"  main process      RSS {main_rss:7.1f} MB  PSS {main_pss:7.1f} MB")
            for f in forkserver:
                rss, pss = _mem_mb(f)
                print(f"  forkserver        RSS {rss:7.1f} MB  PSS {pss:7.1f} MB")
            if jobs:
                rss, pss = _mem_mb(jobs[0])
                print(
                    f"  idle job process  RSS {rss:7.1f} MB  PSS {pss:7.1f} MB  (x{len(jobs)} idle)"
                )
            total_pss = sum(_mem_mb(p)[1] for p in [proc.pid, *forkserver, *jobs])
            print(f"  all processes     PSS {total_pss:7.1f} MB")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    binary = find_livekit_server()
    lk: subprocess.Popen[bytes] | None = None
    port = free_port()
    if binary:
        lk = subprocess.Popen(
            [binary, "--dev", "--bind", HOST, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(1.0)
    else:
        print("(no livekit-server found: the worker runs unregistered, memory is the same)")
    try:
        url = f"ws://{HOST}:{port}"
        measure("ours", {"LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0"}, url)
        cpus = math.ceil(os.cpu_count() or 1)
        measure(
            "library defaults",
            {
                "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES": str(cpus),
                "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "1",
            },
            url,
        )
    finally:
        if lk is not None:
            lk.terminate()
            lk.wait()


if __name__ == "__main__":
    main()
