"""Admission by fleet capacity through the real Mangum handler: no free slot, no new session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.fleet import report_capacity, withdraw
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.livekit_events import event_body, post_event

BASE = "/voice/realtime"


def create(cp: ControlPlane, user: str = "alice"):
    return invoke("POST", f"{BASE}/session", headers=cp.headers(user), json={})


def test_create_is_refused_with_503_and_retry_after_when_no_worker_reported_in(
    control_plane: ControlPlane,
) -> None:
    withdraw(control_plane.dynamodb, control_plane.table)
    r = create(control_plane)
    assert r.status == 503
    assert r.body["error"] == "fleet_at_capacity"
    assert "no agent worker has reported in" in r.body["message"]
    assert r.headers["retry-after"] == "5"


def test_a_full_worker_is_no_capacity(control_plane: ControlPlane) -> None:
    report_capacity(control_plane.dynamodb, control_plane.table, free=0, total=3)
    r = create(control_plane)
    assert r.status == 503
    assert "1 worker(s) report 0 free slot(s)" in r.body["message"]


def test_sessions_created_but_not_joined_hold_the_free_slots(control_plane: ControlPlane) -> None:
    report_capacity(control_plane.dynamodb, control_plane.table, free=2)
    first = create(control_plane)
    assert create(control_plane, "bob").status == 201
    refused = create(control_plane)
    assert refused.status == 503
    assert "2 session(s) created but not yet joined" in refused.body["message"]
    # Once its caller joins, a session is the worker's to count (in its next heartbeat).
    post_event(event_body("participant_joined", first.body["room_name"], "caller-alice"))
    assert create(control_plane).status == 201


def test_heartbeats_of_several_workers_add_up_and_a_lapsed_one_counts_for_nothing(
    control_plane: ControlPlane,
) -> None:
    withdraw(control_plane.dynamodb, control_plane.table)
    report_capacity(control_plane.dynamodb, control_plane.table, free=1, worker_id="a")
    report_capacity(control_plane.dynamodb, control_plane.table, free=1, worker_id="b")
    report_capacity(control_plane.dynamodb, control_plane.table, free=9, worker_id="c", valid_for=0)
    assert create(control_plane).status == 201
    assert create(control_plane, "bob").status == 201
    assert create(control_plane).status == 503


def test_admission_switched_off_in_the_config_admits_without_any_worker(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["admission"]["enabled"] = False
    path = tmp_path / "voice.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()
    withdraw(control_plane.dynamodb, control_plane.table)
    assert create(control_plane).status == 201


def test_the_monitor_publishes_the_fleet_slots_that_admission_sees(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.background.monitor import handler

    withdraw(control_plane.dynamodb, control_plane.table)
    report_capacity(control_plane.dynamodb, control_plane.table, free=2, total=3, worker_id="a")
    report_capacity(control_plane.dynamodb, control_plane.table, free=1, total=3, worker_id="b")
    assert create(control_plane).status == 201
    capsys.readouterr()
    handler({}, LambdaContext(function_name="voice-monitor"))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [emf] = [e for e in emitted if "FleetFreeSlots" in e]
    assert emf["FleetFreeSlots"] == [3.0]
    assert emf["FleetTotalSlots"] == [6.0]
    assert emf["FleetWorkers"] == [2.0]
    assert emf["UnjoinedSessions"] == [1.0]
    assert emf["FleetAvailableSlots"] == [2.0]


def test_an_outbound_call_is_refused_like_a_session_when_no_worker_has_a_free_slot(
    control_plane: ControlPlane,
) -> None:
    report_capacity(control_plane.dynamodb, control_plane.table, free=0, total=3)
    r = invoke(
        "POST",
        f"{BASE}/call",
        headers=control_plane.headers(),
        json={"to": "sip:bob@127.0.0.1:5999"},
    )
    assert r.status == 503, r.body
    assert r.body["error"] == "fleet_at_capacity"
    assert r.headers["retry-after"] == "5"
    # Nothing was dialled or stored: the caller's limit is untouched.
    listed = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers()).body
    assert listed["sessions"] == []
