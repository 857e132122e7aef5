"""Forged, replayed and reordered webhooks, and abusive bodies, through the real Mangum handler."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import event_body, post_event

BASE = "/voice/realtime"


def new_session(cp: ControlPlane, user: str = "alice") -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(user), json={})
    assert r.status == 201, r.body
    return r.body


def status_of(cp: ControlPlane, sid: str, user: str = "alice") -> str:
    return invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers(user)).body["status"]


def live_counter(cp: ControlPlane, user: str = "alice") -> int:
    item = cp.dynamodb.get_item(
        TableName=cp.table, Key={"pk": {"S": f"USER#{user}"}, "sk": {"S": "LIMIT"}}
    )["Item"]
    return int(item["live"]["N"])


def body_hash(body: str) -> str:
    import hashlib

    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


# -- forged ----------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["alg_none", "unknown_key", "no_hash_claim"])
def test_forged_webhook_tokens_are_401_and_change_nothing(
    control_plane: ControlPlane, forgery: str
) -> None:
    s = new_session(control_plane)
    body = event_body("room_finished", s["room_name"])
    claims = {"iss": DEV_LIVEKIT_KEY, "sha256": body_hash(body), "exp": 4102444800, "nbf": 0}
    token = {
        "alg_none": jwt.encode(claims, key=None, algorithm="none"),
        "unknown_key": jwt.encode(claims | {"iss": "APIforged"}, DEV_LIVEKIT_SECRET, "HS256"),
        "no_hash_claim": jwt.encode(
            {k: v for k, v in claims.items() if k != "sha256"}, DEV_LIVEKIT_SECRET, "HS256"
        ),
    }[forgery]
    r = post_event(body, token=token)
    assert r.status == 401 and r.body["error"] == "invalid_webhook", r.body
    assert status_of(control_plane, s["session_id"]) == "pending"
    assert live_counter(control_plane) == 1


def test_a_signed_event_for_a_room_that_only_borrows_a_session_id_is_ignored(
    control_plane: ControlPlane,
) -> None:
    s = new_session(control_plane)
    borrowed = f"voice-mallory-{s['session_id']}"
    r = post_event(event_body("room_finished", borrowed))
    assert r.status == 200 and r.body["session_id"] is None
    assert status_of(control_plane, s["session_id"]) == "pending"


# -- replayed --------------------------------------------------------------------------------


def test_replayed_end_events_free_the_slot_exactly_once(control_plane: ControlPlane) -> None:
    sessions = [new_session(control_plane) for _ in range(3)]
    room = sessions[0]["room_name"]
    post_event(event_body("participant_joined", room, "caller-alice"))
    left = event_body("participant_left", room, "caller-alice")
    finished = event_body("room_finished", room)
    actions = [post_event(b).body["action"] for b in (left, left, finished, left, finished)]
    assert actions == ["ended", "unchanged", "unchanged", "unchanged", "unchanged"]
    assert live_counter(control_plane) == 2
    assert status_of(control_plane, sessions[1]["session_id"]) == "pending"


def test_a_replayed_agent_left_never_fails_a_session_twice_or_a_finished_one(
    control_plane: ControlPlane,
) -> None:
    s = new_session(control_plane)
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    post_event(event_body("room_finished", s["room_name"]))
    agent_left = event_body("participant_left", s["room_name"], "agent-1", agent=True)
    assert post_event(agent_left).body["action"] == "unchanged"
    body = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers()).body
    assert (body["status"], body["end_reason"]) == ("ended", "room_finished")
    assert live_counter(control_plane) == 0


# -- reordered -------------------------------------------------------------------------------


def test_a_join_delivered_after_the_leave_does_not_revive_the_session(
    control_plane: ControlPlane,
) -> None:
    s = new_session(control_plane)
    room = s["room_name"]
    assert post_event(event_body("participant_left", room, "caller-alice")).body["action"] == (
        "ended"
    )
    # The room of an ended session is closed (here queued: LiveKit is unreachable), never revived.
    closing = {"closed", "close_deferred"}
    assert post_event(event_body("participant_joined", room, "caller-alice")).body["action"] in (
        closing
    )
    assert post_event(event_body("room_started", room)).body["action"] in closing
    assert status_of(control_plane, s["session_id"]) == "ended"
    assert live_counter(control_plane) == 0


def test_an_agent_join_before_the_caller_join_still_activates_once(
    control_plane: ControlPlane,
) -> None:
    s = new_session(control_plane)
    room = s["room_name"]
    agent = post_event(event_body("participant_joined", room, "agent-1", agent=True))
    assert agent.body["action"] == "agent_joined"
    assert post_event(event_body("room_started", room)).body["action"] == "activated"
    assert post_event(event_body("participant_joined", room, "caller")).body["action"] == (
        "unchanged"
    )
    body = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers()).body
    assert body["status"] == "active" and body["agent_joined"] is True
    assert live_counter(control_plane) == 1


# -- abusive bodies --------------------------------------------------------------------------


def assert_json_4xx(r, *statuses: int) -> None:
    assert r.status in statuses, (r.status, r.body)
    assert isinstance(r.body, dict) and r.body["error"] and r.body["message"], r.body


def test_an_oversized_create_body_is_413_json(control_plane: ControlPlane) -> None:
    from functions.settings import get_settings

    size = get_settings().max_body_bytes + 1
    body = json.dumps({"metadata": {"blob": "x" * size}})
    r = invoke("POST", f"{BASE}/session", headers=control_plane.headers(), body=body)
    assert_json_4xx(r, 413)
    assert live_counter_or_zero(control_plane) == 0


def test_an_oversized_webhook_is_413_json(control_plane: ControlPlane) -> None:
    from functions.settings import get_settings

    body = "{" + " " * (get_settings().max_body_bytes + 1) + "}"
    assert_json_4xx(post_event(body), 413)


def test_a_deeply_nested_create_body_is_4xx_json(control_plane: ControlPlane) -> None:
    # Under the size limit, far past Python's recursion limit for a recursive parser.
    depth = 7000
    body = '{"metadata": {"a": ' + "[" * depth + "]" * depth + "}}"
    assert len(body) < 16 * 1024
    r = invoke("POST", f"{BASE}/session", headers=control_plane.headers(), body=body)
    assert_json_4xx(r, 400, 413, 422)
    assert live_counter_or_zero(control_plane) == 0


@pytest.mark.parametrize("route", ["/session", "/livekit/webhook"])
def test_a_body_that_is_not_utf8_is_4xx_json(control_plane: ControlPlane, route: str) -> None:
    body = b'{"metadata": {"name": "\xff\xfe\xfa"}}'
    r = invoke("POST", f"{BASE}{route}", headers=control_plane.headers(), body=body)
    assert_json_4xx(r, 400, 401, 422)
    assert live_counter_or_zero(control_plane) == 0


def live_counter_or_zero(cp: ControlPlane, user: str = "alice") -> int:
    item = cp.dynamodb.get_item(
        TableName=cp.table, Key={"pk": {"S": f"USER#{user}"}, "sk": {"S": "LIMIT"}}
    ).get("Item")
    return int(item["live"]["N"]) if item else 0
