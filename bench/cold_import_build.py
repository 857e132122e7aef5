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
from infra.local.aws import LOCAL_TABLE  # noqa: E402
from infra.local.paths import CONFIG_FILE  # noqa: E402
from infra.template import load_template  # noqa: E402

HANDLER = "import functions.api.handler"
# What a handler written the obvious way imports before its first line of logic.
NAIVE = (
    "import boto3; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "from fastapi import FastAPI; from mangum import Mangum; from livekit import api"
)
PROBE = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
    "exec(sys.argv[2]); print(time.perf_counter() - t)"
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


def runtime_python() -> tuple[str, str]:
    """The template's Lambda runtime version and a local interpreter of that version."""
    version = load_template()["Globals"]["Function"]["Runtime"].removeprefix("python")
    found = subprocess.run(
        [str(ROOT / "infra/deploy/lambda_python.sh"), version],
        capture_output=True,
        text=True,
        check=True,
    )
    return version, found.stdout.strip()


def build(target: Path, bytecode: bool, python: str) -> None:
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
            f"PYTHON={python}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cold_import(python: str, package: Path, code: str) -> tuple[float, float]:
    """(import seconds, whole process seconds) of one fresh interpreter."""
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
    return float(out.strip().splitlines()[-1]), process


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
    version, python = runtime_python()
    cases = {
        "handler, no bytecode (sam default)": ("no-pyc", HANDLER),
        "handler, precompiled bytecode": ("with-pyc", HANDLER),
        "naive imports, precompiled bytecode": ("with-pyc", NAIVE),
    }
    imports: dict[str, list[float]] = {name: [] for name in cases}
    processes: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for folder, bytecode in (("no-pyc", False), ("with-pyc", True)):
            (Path(tmp) / folder).mkdir()
            build(Path(tmp) / folder, bytecode, python)
        for _ in range(args.runs):
            for name, (folder, code) in cases.items():
                imported, process = cold_import(python, Path(tmp) / folder, code)
                imports[name].append(imported)
                processes[name].append(process)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": f"{python} (Lambda runtime python{version})",
        "runs": args.runs,
        "cases": {
            name: {"import": ms(imports[name]), "process": ms(processes[name])} for name in cases
        },
    }
    handler = statistics.median(imports["handler, precompiled bytecode"])
    naive = statistics.median(imports["naive imports, precompiled bytecode"])
    result["handler_over_naive_import"] = round(handler / naive, 2)
    handler_p = statistics.median(processes["handler, precompiled bytecode"])
    naive_p = statistics.median(processes["naive imports, precompiled bytecode"])
    result["handler_over_naive_process"] = round(handler_p / naive_p, 2)

    print(f"cold import, {args.runs} fresh interpreters each, {result['python']}")
    print(f"{result['machine']}, {result['date']}")
    for name, figures in result["cases"].items():
        i, p = figures["import"], figures["process"]
        print(
            f"  {name:38s} import median {i['median_ms']:6.0f} ms "
            f"(min {i['min_ms']:4.0f}, max {i['max_ms']:4.0f})   "
            f"whole process median {p['median_ms']:6.0f} ms"
        )
    print(
        f"  handler / naive: {result['handler_over_naive_import']}x the import, "
        f"{result['handler_over_naive_process']}x the whole process"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
