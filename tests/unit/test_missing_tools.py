"""A missing tool (livekit-server, the SIP service, Redis, chromium, podman, espeak-ng) fails the
run under CI=true and skips it elsewhere, saying what to install either way."""

from __future__ import annotations

import pytest

from tests.support.tools import missing_tool

WHAT = "no chromium: run `make browser-deps` (Debian's chromium package)"


def test_a_missing_tool_fails_the_run_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="make browser-deps"):
        missing_tool(WHAT)


def test_a_missing_tool_skips_outside_ci_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make browser-deps"):
        missing_tool(WHAT)
