"""`python -m worker`: a bad config stops it early; its verbs map onto the library's own CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from worker.__main__ import APP, agents_argv

REPO = Path(__file__).resolve().parents[2]


def test_a_bad_config_exits_with_code_2_and_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "voice_config.yaml"
    config.write_text("voice:\n  realtime:\n    worker: {max_jobs: lots}\n")
    env = {**os.environ, "VOICE_CONFIG_URI": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "worker", "start"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = done.stdout + done.stderr
    assert done.returncode == 2, logs
    assert "invalid voice config" in logs
    assert "max_jobs" in logs
    # Stopped before the library started: nothing registered, no worker loop.
    assert "starting worker" not in logs


def test_start_runs_the_app_module_in_production_mode() -> None:
    argv = agents_argv("start", level="INFO", url=None)
    assert argv[:2] == ["start", str(APP)]
    assert "--dev" not in argv
    assert "--url" not in argv


def test_dev_and_url_are_passed_on() -> None:
    argv = agents_argv("dev", level="DEBUG", url="ws://127.0.0.1:7880")
    assert argv[argv.index("--url") + 1] == "ws://127.0.0.1:7880"
    assert argv[argv.index("--log-level") + 1] == "DEBUG"
    assert "--dev" in argv
