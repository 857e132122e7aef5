"""Config that would silently break calls is refused or said out loud, through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.fleet import report_capacity, withdraw
from tests.support.lambda_events import invoke

BASE = "/voice/realtime"


def create(cp: ControlPlane):
    return invoke("POST", f"{BASE}/session", headers=cp.headers(), json={})


def test_a_renamed_agent_no_worker_serves_is_refused_saying_what_a_rename_needs(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The running workers serve the repo config's name; the pushed config renames the agent.
    path = config_with(tmp_path / "voice.yaml", {"worker": {"agent_name": "voice-v2"}})
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()
    r = create(control_plane)
    assert r.status == 503, r.body
    assert r.body["error"] == "agent_not_served"
    assert "'voice-v2'" in r.body["message"]
    assert "'openagents-voice'" in r.body["message"]
    assert "OPENAGENTS_LIVEKIT_AGENT_NAME" in r.body["message"]
    assert int(r.headers["retry-after"]) > 0
    # Once a worker serves the new name, sessions are created (and dispatched to it).
    report_capacity(
        control_plane.dynamodb, control_plane.table, 2, worker_id="v2", agent_name="voice-v2"
    )
    assert create(control_plane).status == 201
    # Full workers of the new name are capacity, not a rename: the ordinary 503.
    report_capacity(
        control_plane.dynamodb,
        control_plane.table,
        0,
        total=2,
        worker_id="v2",
        agent_name="voice-v2",
    )
    assert create(control_plane).body["error"] == "fleet_at_capacity"
    withdraw(control_plane.dynamodb, control_plane.table, worker_id="v2")
    assert create(control_plane).body["error"] == "agent_not_served"
