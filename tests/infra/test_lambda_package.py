"""The Lambda package carries the shared dependencies plus the `api` extra, nothing from the worker."""

from __future__ import annotations

import re
from pathlib import Path

from infra.deploy.lambda_requirements import lambda_requirements

ROOT = Path(__file__).resolve().parents[2]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=~! ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_lambda_requirements_are_the_core_dependencies_and_the_api_extra():
    got = names(lambda_requirements(ROOT / "pyproject.toml"))
    assert {
        "pydantic",
        "pyyaml",
        "fastapi",
        "mangum",
        "aws-lambda-powertools",
        "livekit-api",
    } <= got
    assert "livekit-agents" not in got


def test_lambda_build_ships_unchecked_hash_bytecode_for_the_functions_and_voice_packages():
    makefile = (ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    assert "compileall" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
    assert "find functions voice" in makefile
