"""Signed LiveKit webhooks drive the session state machine through the real Mangum handler."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import event_body, post_event, sign

BASE = "/voice/realtime"


def new_session(cp: ControlPlane, user: str = "alice") -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(user), json={})
    assert r.status == 201
    return r.body


def status_of(cp: ControlPlane, sid: str, user: str = "alice") -> dict:
    return invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers(user)).body


def test_caller_join_activates_the_session_once(control_plane: ControlPlane) -> None:
    s = new_session(control_plane)
    body = event_body("participant_joined", s["room_name"], "caller-alice")
    first = post_event(body)
    assert first.status == 200
    assert first.body == {"session_id": s["session_id"], "action": "activated"}
    after = status_of(control_plane, s["session_id"])
    assert after["status"] == "active"
    assert after["joined_at"] is not None
    replay = post_event(body)
    assert replay.body["action"] == "unchanged"
    assert status_of(control_plane, s["session_id"])["joined_at"] == after["joined_at"]


def test_room_started_also_activates(control_plane: ControlPlane) -> None:
    s = new_session(control_plane)
    assert post_event(event_body("room_started", s["room_name"])).body["action"] == "activated"


def test_agent_join_is_recorded(control_plane: ControlPlane) -> None:
    s = new_session(control_plane)
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    r = post_event(event_body("participant_joined", s["room_name"], "agent-AJ_1", agent=True))
    assert r.body["action"] == "agent_joined"
    st = status_of(control_plane, s["session_id"])
    assert st["agent_joined"] is True
    assert st["status"] == "active"


def test_room_finished_ends_the_session_and_frees_the_slot(control_plane: ControlPlane) -> None:
    sessions = [new_session(control_plane) for _ in range(3)]
    assert invoke("POST", f"{BASE}/session", headers=control_plane.headers(), json={}).status == 429
    room = sessions[0]["room_name"]
    post_event(event_body("participant_joined", room, "caller-alice"))
    finished = event_body("room_finished", room)
    assert post_event(finished).body["action"] == "ended"
    st = status_of(control_plane, sessions[0]["session_id"])
    assert st["status"] == "ended"
    assert st["end_reason"] == "room_finished"
    assert st["usage"]["duration_seconds"] is not None
    # A replay and a late join change nothing, and the slot is freed exactly once.
    assert post_event(finished).body["action"] == "unchanged"
    late = post_event(event_body("participant_joined", room, "caller-alice"))
    # A join of an ended session's room gets the room closed (queued: LiveKit is unreachable).
    assert late.body["action"] == "close_deferred"
    assert status_of(control_plane, sessions[0]["session_id"])["status"] == "ended"
    assert invoke("POST", f"{BASE}/session", headers=control_plane.headers(), json={}).status == 201
    assert invoke("POST", f"{BASE}/session", headers=control_plane.headers(), json={}).status == 429


def test_caller_leaving_ends_the_session(control_plane: ControlPlane) -> None:
    s = new_session(control_plane)
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    r = post_event(event_body("participant_left", s["room_name"], "caller-alice"))
    assert r.body["action"] == "ended"
    assert status_of(control_plane, s["session_id"])["end_reason"] == "caller_left"


def test_agent_lost_with_livekit_unreachable_fails_the_session(
    control_plane: ControlPlane,
) -> None:
    s = new_session(control_plane)
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    r = post_event(event_body("participant_left", s["room_name"], "agent-1", agent=True))
    assert r.body["action"] == "failed"
    st = status_of(control_plane, s["session_id"])
    assert st["status"] == "failed"
    assert st["end_reason"] == "agent_lost"


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "wrong_body", "stale", "missing"],
)
def test_unverified_webhooks_are_401_and_change_nothing(
    control_plane: ControlPlane, tamper: str
) -> None:
    s = new_session(control_plane)
    body = event_body("participant_joined", s["room_name"], "caller-alice")
    token = {
        "wrong_secret": sign(body, secret="not-the-secret"),
        "wrong_body": sign(body.replace("caller-alice", "caller-mallory")),
        "stale": sign(body, ttl=timedelta(minutes=-10)),
        "missing": "",
    }[tamper]
    r = post_event(body, token=token)
    assert r.status == 401
    assert r.body["error"] == "invalid_webhook"
    assert status_of(control_plane, s["session_id"])["status"] == "pending"


def test_events_for_unknown_rooms_are_acknowledged_and_ignored(
    control_plane: ControlPlane,
) -> None:
    r = post_event(event_body("room_finished", "someone-elses-room"))
    assert r.status == 200
    assert r.body["session_id"] is None
