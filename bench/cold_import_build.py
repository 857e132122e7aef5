"""Prints the cold import of the built Lambda package's handler, beside a naive import of its stack.

Builds the package with the recipe `sam build` uses (functions/Makefile), for this machine's
platform instead of arm64, with the Python of the template's Lambda runtime, twice: without and
with precompiled bytecode. Then, in fresh interpreters of that Python that may not write bytecode
(the runtime's /var/task is read-only, so a package without .pyc compiles on every cold start),
it imports the handler, and in the same run and the same package, a naive handler's imports:
FastAPI + Mangum + boto3 + Powertools + livekit-api. Runs alternate so drift hits both alike.

    .venv/bin/python bench/cold_import_build.py [--runs 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from infra.deploy.lambda_package import build_package, runtime_python, runtime_version  # noqa: E402
from infra.local.aws import LOCAL_TABLE  # noqa: E402
from infra.local.paths import CONFIG_FILE  # noqa: E402

HANDLER = "import functions.api.handler"
# What a handler written the obvious way imports before its first line of logic.
NAIVE = (
    "import boto3; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "from fastapi import FastAPI; from mangum import Mangum; from livekit import api"
)
# Wall time, and the CPU time this process spent importing: on a busy machine the wall time
# grows with the load, the CPU time much less, so both are printed.
PROBE = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); "
    "t, c = time.perf_counter(), time.process_time(); exec(sys.argv[2]); "
    "print(time.perf_counter() - t, time.process_time() - c)"
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


def cold_import(python: str, package: Path, code: str) -> tuple[float, float, float]:
    """(import seconds, import CPU seconds, whole process seconds) of one fresh interpreter."""
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **LAMBDA_ENV}
    started = time.perf_counter()
    out = subprocess.run(
        [python, "-s", "-c", PROBE, str(package), code],
        env=env,
        cwd=package,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    process = time.perf_counter() - started
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu), process


def ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    version, python = runtime_version(), runtime_python()
    cases = {
        "handler, no bytecode (sam default)": ("no-pyc", HANDLER),
        "handler, precompiled bytecode": ("with-pyc", HANDLER),
        "naive imports, precompiled bytecode": ("with-pyc", NAIVE),
    }
    imports: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    processes: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for folder, bytecode in (("no-pyc", False), ("with-pyc", True)):
            (Path(tmp) / folder).mkdir()
            build_package(Path(tmp) / folder, python, bytecode=bytecode)
        for _ in range(args.runs):
            for name, (folder, code) in cases.items():
                imported, cpu, process = cold_import(python, Path(tmp) / folder, code)
                imports[name].append(imported)
                cpus[name].append(cpu)
                processes[name].append(process)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_average_1m": round(os.getloadavg()[0], 1),
        "python": f"{python} (Lambda runtime python{version})",
        "runs": args.runs,
        "cases": {
            name: {
                "import": ms(imports[name]),
                "import_cpu": ms(cpus[name]),
                "process": ms(processes[name]),
            }
            for name in cases
        },
    }
    for label, values in (("import", imports), ("import_cpu", cpus), ("process", processes)):
        handler = statistics.median(values["handler, precompiled bytecode"])
        naive = statistics.median(values["naive imports, precompiled bytecode"])
        result[f"handler_over_naive_{label}"] = round(handler / naive, 2)

    print(f"cold import, {args.runs} fresh interpreters each, {result['python']}")
    print(f"{result['machine']}, load {result['load_average_1m']}, {result['date']}")
    print(
        f"  {'medians, ms':38s} {'import':>8s} {'(min':>6s} {'max)':>6s} {'CPU':>6s} {'process':>8s}"
    )
    for name, figures in result["cases"].items():
        i, c, p = figures["import"], figures["import_cpu"], figures["process"]
        print(
            f"  {name:38s} {i['median_ms']:8.0f} {i['min_ms']:6.0f} {i['max_ms']:6.0f} "
            f"{c['median_ms']:6.0f} {p['median_ms']:8.0f}"
        )
    print(
        f"  handler / naive: {result['handler_over_naive_import']}x the import, "
        f"{result['handler_over_naive_import_cpu']}x its CPU time, "
        f"{result['handler_over_naive_process']}x the whole process"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
