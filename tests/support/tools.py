"""A missing tool skips its suite on a developer's machine and fails it in CI (`CI=true`)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_tool(what: str) -> NoReturn:
    """`what` names the missing tool and how to install it."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: a missing tool fails the run instead of skipping)")
    pytest.skip(what)
