"""Builds the Lambda package with functions/Makefile, by the Python of the template's runtime."""

from __future__ import annotations

import subprocess
from pathlib import Path

from infra.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def runtime_version() -> str:
    """The Lambda runtime's Python version, e.g. "3.12", from template.yaml."""
    return load_template()["Globals"]["Function"]["Runtime"].removeprefix("python")


def runtime_python() -> str:
    """A local interpreter of the runtime's version (PATH, else pyenv): what the Makefile uses."""
    return subprocess.run(
        [str(ROOT / "infra/deploy/lambda_python.sh"), runtime_version()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def build_package(target: Path, python: str, *, bytecode: bool = True) -> None:
    """The package `sam build` makes, for this machine's platform instead of arm64."""
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
