"""The Lambda package carries the shared dependencies plus the `api` extra, nothing from the worker."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pinned_names(lock: Path) -> set[str]:
    return set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", lock.read_text(encoding="utf-8"), re.M))


def test_lambda_lock_pins_the_core_dependencies_and_the_api_extra_only():
    got = pinned_names(ROOT / "locks" / "lambda.txt")
    assert {
        "pydantic",
        "pyyaml",
        "fastapi",
        "mangum",
        "aws-lambda-powertools",
        "livekit-api",
    } <= got
    assert not {"livekit-agents", "onnxruntime", "pytest", "moto"} & got


def test_lambda_build_installs_exactly_the_hashed_lock():
    makefile = (ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes --no-deps" in makefile
    assert "locks/lambda.txt" in makefile


def test_lambda_build_ships_unchecked_hash_bytecode_for_the_functions_and_voice_packages():
    makefile = (ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    assert "compileall" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
    assert "find functions voice" in makefile
