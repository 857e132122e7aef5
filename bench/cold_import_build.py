"""Prints the cold import time of the built Lambda package's handler, without and with bytecode.

Builds the package twice with the same recipe `sam build` uses (functions/Makefile), for this
machine's platform instead of arm64, then imports the handler in fresh interpreters that may not
write bytecode (the runtime's /var/task is read-only, so a package without .pyc compiles on
every cold start).

    .venv/bin/python bench/cold_import_build.py [--runs 15] [--module functions.api.handler]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from infra.local.aws import LOCAL_TABLE  # noqa: E402
from infra.local.paths import CONFIG_FILE  # noqa: E402

PYTHON = "python3.11"
PROBE = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
    "import importlib; importlib.import_module(sys.argv[2]); "
    "print(time.perf_counter() - t)"
)
# What the function sees, minus anything that would call AWS at import.
LAMBDA_ENV = {
    "ENVIRONMENT": "local",
    "SESSIONS_TABLE": LOCAL_TABLE,
    "VOICE_CONFIG_URI": str(CONFIG_FILE),
    "POWERTOOLS_SERVICE_NAME": "control-plane",
    "POWERTOOLS_METRICS_NAMESPACE": "VoiceAgents",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def build(target: Path, bytecode: bool) -> None:
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(ROOT / "functions" / "Makefile"),
            "package",
            f"ARTIFACTS_DIR={target}",
            "PIP_PLATFORM=",
            f"BYTECODE={int(bytecode)}",
            f"PYTHON={PYTHON}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cold_imports(package: Path, module: str, runs: int) -> list[float]:
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **LAMBDA_ENV}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [PYTHON, "-s", "-c", PROBE, str(package), module],
            env=env,
            cwd=package,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--module", default="functions.api.handler")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for bytecode in (False, True):
            package = Path(tmp) / ("with-pyc" if bytecode else "no-pyc")
            package.mkdir()
            build(package, bytecode)
            times = cold_imports(package, args.module, args.runs)
            rows.append((bytecode, times))
    print(f"cold import of {args.module} ({args.runs} fresh interpreters, {sys.platform})")
    for bytecode, times in rows:
        label = "with precompiled bytecode" if bytecode else "without bytecode (sam default)"
        print(
            f"  {label:32s} median {statistics.median(times) * 1000:7.0f} ms"
            f"   min {min(times) * 1000:7.0f} ms   max {max(times) * 1000:7.0f} ms"
        )


if __name__ == "__main__":
    main()
