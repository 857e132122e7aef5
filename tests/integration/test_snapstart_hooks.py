"""The API function's SnapStart hooks, run the way the Lambda runtime runs them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from snapshot_restore_py import get_after_restore, get_before_snapshot

from functions import snapstart
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke

ROOT = Path(__file__).resolve().parents[2]


def run_hooks(registry: list) -> None:
    # As the runtime does: each registered (function, args, kwargs), in registration order.
    for func, args, kwargs in registry:
        func(*args, **kwargs)


def test_importing_the_handler_registers_both_hooks() -> None:
    import functions.api.handler  # noqa: F401

    assert (snapstart.before_snapshot, (), {}) in get_before_snapshot()
    assert (snapstart.after_restore, (), {}) in get_after_restore()


def test_copies_restored_from_one_snapshot_draw_different_random_numbers() -> None:
    import functions.api.handler  # noqa: F401

    random.seed(1234)  # the state every copy resumes with
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        run_hooks(get_after_restore())
        draws.append(random.random())
    assert draws[0] != draws[1]


def test_a_restored_copy_builds_its_own_clients_and_settings_then_serves(
    control_plane: ControlPlane,
) -> None:
    import functions.api.handler  # noqa: F401
    from functions.wiring import get_container

    before = get_container()
    run_hooks(get_after_restore())
    after = get_container()
    assert after is not before
    assert after.settings is not before.settings
    assert after.store is not before.store
    created = invoke("POST", "/voice/realtime/session", headers=control_plane.headers(), json={})
    assert created.status == 201, created.body


def test_the_snapshot_holds_the_first_requests_imports_but_nothing_built_from_its_environment(
    tmp_path: Path,
) -> None:
    # A fresh interpreter, so what the handler's import leaves out is really left out.
    probe = """
import sys
from snapshot_restore_py import get_before_snapshot
import functions.api.handler
from functions.wiring import get_container
lazy = ("livekit.api", "aiohttp")
assert not any(m in sys.modules for m in lazy), [m for m in lazy if m in sys.modules]
for func, args, kwargs in get_before_snapshot():
    func(*args, **kwargs)
assert all(m in sys.modules for m in lazy), [m for m in lazy if m not in sys.modules]
assert get_container.cache_info().currsize == 0
import os, boto3
assert boto3.DEFAULT_SESSION is not None, "no client was warmed"
# Keys the snapshot took would be served from the session's cache instead of these.
os.environ["AWS_ACCESS_KEY_ID"] = "restored-copy"
assert boto3.DEFAULT_SESSION.get_credentials().access_key == "restored-copy"
print("ok")
"""
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "SESSIONS_TABLE": "voice-sessions-test",
        "HOME": str(tmp_path),  # no ~/.aws: only the environment holds credentials
        "AWS_ACCESS_KEY_ID": "snapshotting-copy",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
