"""The sessions API through the real Mangum handler with API Gateway HTTP API (v2) events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import jwt
import pytest

from functions.settings import DEV_LIVEKIT_KEY as LK_KEY
from functions.settings import DEV_LIVEKIT_SECRET as LK_SECRET
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke
from voice.report import SessionReport, TurnLatency, Usage, report_key
from voice.table import sharded

BASE = "/voice/realtime"


def create(cp: ControlPlane, user: str = "alice", **body: object):
    return invoke("POST", f"{BASE}/session", headers=cp.headers(user), json=body)


def test_create_session_returns_the_reference_contract(control_plane: ControlPlane) -> None:
    r = create(control_plane, agent_type="single_agent", initial_greeting=True)
    assert r.status == 201, r.body
    body = r.body
    assert set(body) >= {"session_id", "room_name", "token", "url", "expires_at", "status"}
    assert body["status"] == "pending"
    assert body["room_name"] == f"voice-alice-{body['session_id']}"
    assert body["url"].startswith("ws://127.0.0.1:")
    expires = datetime.fromisoformat(body["expires_at"])
    token_expires = datetime.fromisoformat(body["token_expires_at"])
    assert token_expires - expires == timedelta(hours=2) - timedelta(seconds=3600)


def test_token_grants_join_of_that_room_only_and_dispatches_the_agent(
    control_plane: ControlPlane,
) -> None:
    r = create(
        control_plane,
        agent_type="smart_router",
        initial_greeting=False,
        voice_profile="professional",
        metadata={"order": 42},
    )
    claims = jwt.decode(r.body["token"], LK_SECRET, algorithms=["HS256"])
    assert claims["iss"] == LK_KEY
    assert claims["sub"] == "caller-alice"
    assert claims["exp"] - claims["nbf"] == 2 * 3600
    video = claims["video"]
    assert video["roomJoin"] is True
    assert video["room"] == r.body["room_name"]
    for forbidden in ("roomAdmin", "roomCreate", "roomRecord", "roomList", "ingressAdmin"):
        assert not video.get(forbidden), forbidden
    room_cfg = claims["roomConfig"]
    assert room_cfg["emptyTimeout"] == 300
    assert room_cfg["maxParticipants"] == 2
    [dispatch] = room_cfg["agents"]
    assert dispatch["agentName"] == "openagents-voice"
    assert json.loads(dispatch["metadata"]) == {
        "session_id": r.body["session_id"],
        "agent_type": "smart_router",
        "initial_greeting": False,
        "voice_profile": "professional",
        "metadata": {"order": 42},
    }


def test_create_uses_config_defaults_when_fields_are_omitted(control_plane: ControlPlane) -> None:
    r = create(control_plane)
    assert r.status == 201
    claims = jwt.decode(r.body["token"], LK_SECRET, algorithms=["HS256"])
    meta = json.loads(claims["roomConfig"]["agents"][0]["metadata"])
    assert meta["agent_type"] == "smart_router"
    assert meta["initial_greeting"] is True


def test_create_without_a_body_uses_the_config_defaults(control_plane: ControlPlane) -> None:
    r = invoke("POST", f"{BASE}/session", headers={"x-api-key": control_plane.keys["alice"]})
    assert r.status == 201, r.body
    assert r.body["status"] == "pending"


def test_get_session_shows_status_for_its_owner(control_plane: ControlPlane) -> None:
    sid = create(control_plane).body["session_id"]
    r = invoke("GET", f"{BASE}/session/{sid}", headers=control_plane.headers())
    assert r.status == 200
    assert r.body["session_id"] == sid
    assert r.body["status"] == "pending"
    assert r.body["agent_joined"] is False
    assert r.body["usage"] is None
    assert "token" not in r.body
    assert "user_id" not in r.body


def test_read_session_of_other_user_is_not_found(control_plane: ControlPlane) -> None:
    sid = create(control_plane, "alice").body["session_id"]
    r = invoke("GET", f"{BASE}/session/{sid}", headers=control_plane.headers("bob"))
    assert r.status == 404
    assert r.body["error"] == "not_found"
    r = invoke("DELETE", f"{BASE}/session/{sid}", headers=control_plane.headers("bob"))
    assert r.status == 404
    still = invoke("GET", f"{BASE}/session/{sid}", headers=control_plane.headers("alice"))
    assert still.body["status"] == "pending"


def test_missing_or_unknown_api_key_is_401(control_plane: ControlPlane) -> None:
    r = invoke("POST", f"{BASE}/session", json={})
    assert r.status == 401
    assert r.body["error"] == "unauthorized"
    assert "X-API-Key" in r.body["message"]
    r = invoke("GET", f"{BASE}/sessions", headers={"x-api-key": "vk_not-a-key"})
    assert r.status == 401


def test_revoked_key_is_401(control_plane: ControlPlane) -> None:
    from functions.wiring import get_container

    assert get_container().keys.revoke(control_plane.keys["bob"])
    r = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers("bob"))
    assert r.status == 401


def test_limit_rejects_the_fourth_live_session_with_429(control_plane: ControlPlane) -> None:
    for _ in range(3):
        assert create(control_plane).status == 201
    r = create(control_plane)
    assert r.status == 429
    assert r.body["error"] == "session_limit_reached"
    assert "max_sessions_per_user = 3" in r.body["message"]
    assert create(control_plane, "bob").status == 201


def test_delete_is_idempotent_and_frees_the_slot_once(control_plane: ControlPlane) -> None:
    ids = [create(control_plane).body["session_id"] for _ in range(3)]
    first = invoke("DELETE", f"{BASE}/session/{ids[0]}", headers=control_plane.headers())
    assert first.status == 200
    assert first.body["status"] == "ended"
    assert first.body["end_reason"] == "ended_by_api"
    assert first.body["usage"]["duration_seconds"] == 0.0
    for _ in range(3):
        again = invoke("DELETE", f"{BASE}/session/{ids[0]}", headers=control_plane.headers())
        assert again.status == 200
        assert again.body["ended_at"] == first.body["ended_at"]
    # Exactly one slot came back: one more create fits, the next does not.
    assert create(control_plane).status == 201
    assert create(control_plane).status == 429


def test_delete_with_livekit_unreachable_still_ends_and_queues_room_deletion(
    control_plane: ControlPlane,
) -> None:
    sid = create(control_plane).body["session_id"]
    r = invoke("DELETE", f"{BASE}/session/{sid}", headers=control_plane.headers())
    assert r.status == 200
    assert r.body["status"] == "ended"
    item = control_plane.dynamodb.get_item(
        TableName=control_plane.table,
        Key={"pk": {"S": f"SESSION#{sid}"}, "sk": {"S": "SESSION"}},
    )["Item"]
    assert item["room_delete_pending"] == {"BOOL": True}
    # In the room-deletion backlog, under its shard of the by-state index's key.
    assert item["gsi2pk"] == {"S": sharded("CLEANUP", sid)}


def test_list_sessions_is_newest_first_and_paginated(control_plane: ControlPlane) -> None:
    created = []
    for _ in range(3):
        sid = create(control_plane).body["session_id"]
        created.append(sid)
        invoke("DELETE", f"{BASE}/session/{sid}", headers=control_plane.headers())
    create(control_plane, "bob")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers(), query=query)
        assert r.status == 200
        seen += [s["session_id"] for s in r.body["sessions"]]
        pages += 1
        cursor = r.body["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(created))
    assert pages == 2


def test_bad_cursor_is_422_naming_cursor(control_plane: ControlPlane) -> None:
    r = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers(), query="cursor=abc")
    assert r.status == 422
    assert r.body["message"].startswith("cursor:")


def test_unknown_agent_type_is_422_naming_the_field(control_plane: ControlPlane) -> None:
    r = create(control_plane, agent_type="telepathic")
    assert r.status == 422
    assert r.body["error"] == "validation_error"
    assert "agent_type" in r.body["message"]


def test_unknown_voice_profile_is_422_listing_the_profiles(control_plane: ControlPlane) -> None:
    r = create(control_plane, voice_profile="pirate")
    assert r.status == 422
    assert "voice_profile" in r.body["message"]
    assert "professional" in r.body["message"]


def test_oversized_metadata_is_422_and_oversized_body_is_413(control_plane: ControlPlane) -> None:
    r = create(control_plane, metadata={"blob": "x" * 3000})
    assert r.status == 422
    assert r.body["message"].startswith("metadata:")
    r = create(control_plane, metadata={"blob": "x" * 20000})
    assert r.status == 413
    assert r.body["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "raw",
    ["{not json", "[1, 2]", '"text"', '{"initial_greeting": "maybe"}', '{"colour": "red"}'],
)
def test_malformed_bodies_are_422_never_500(control_plane: ControlPlane, raw: str) -> None:
    r = invoke("POST", f"{BASE}/session", headers=control_plane.headers(), body=raw)
    assert r.status == 422, r.body
    assert set(r.body) == {"error", "message"}


def test_unknown_route_and_method_are_json_errors(control_plane: ControlPlane) -> None:
    r = invoke("GET", "/nope", headers=control_plane.headers())
    assert r.status == 404
    assert r.body["error"] == "not_found"
    r = invoke("PUT", f"{BASE}/session/x", headers=control_plane.headers())
    assert r.status == 405
    assert r.body["error"] == "method_not_allowed"


def test_config_is_the_effective_realtime_config(control_plane: ControlPlane) -> None:
    r = invoke("GET", f"{BASE}/config", headers=control_plane.headers())
    assert r.status == 200
    assert r.body["realtime"]["limits"]["max_sessions_per_user"] == 3
    assert r.body["realtime"]["worker"]["agent_name"] == "openagents-voice"
    assert r.body["providers"]["openai"]["tts"]["voice"] == "coral"
    assert LK_SECRET not in json.dumps(r.body)
    assert invoke("GET", f"{BASE}/config").status == 401


def test_health_is_degraded_when_livekit_is_unreachable(control_plane: ControlPlane) -> None:
    create(control_plane)
    r = invoke("GET", f"{BASE}/health")
    assert r.status == 200
    assert r.body["status"] == "degraded"
    assert r.body["livekit_connected"] is False
    assert r.body["active_rooms"] is None
    assert r.body["active_sessions"] == 1
    assert set(r.body) == {
        "status",
        "livekit_connected",
        "livekit_url",
        "active_rooms",
        "active_sessions",
        "timestamp",
        "config",
    }


def test_store_outage_is_503(control_plane: ControlPlane) -> None:
    control_plane.dynamodb.delete_table(TableName=control_plane.table)
    r = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers())
    assert r.status == 503
    assert r.body["error"] == "dependency_unavailable"


def test_an_ended_session_shows_usage_from_the_worker_report(control_plane: ControlPlane) -> None:
    import boto3

    sid = create(control_plane).body["session_id"]
    invoke("DELETE", f"{BASE}/session/{sid}", headers=control_plane.headers())
    before = invoke("GET", f"{BASE}/session/{sid}", headers=control_plane.headers()).body
    assert before["usage"]["tts_characters"] is None
    turn = TurnLatency(at="2026-01-01T00:00:01+00:00")
    report = SessionReport(
        session_id=sid,
        room="voice-alice-" + sid,
        job_id="AJ_1",
        agent_type="single_agent",
        started_at="2026-01-01T00:00:00+00:00",
        ended_at="2026-01-01T00:00:09+00:00",
        duration_s=9.0,
        transcript=[],
        turns=[turn, turn],
        usage=Usage(
            stt_audio_seconds=4.2,
            llm_prompt_tokens=120,
            llm_completion_tokens=30,
            tts_characters=88,
        ),
    )
    boto3.client("s3").put_object(
        Bucket=control_plane.reports_bucket, Key=report_key(sid), Body=report.model_dump_json()
    )
    usage = invoke("GET", f"{BASE}/session/{sid}", headers=control_plane.headers()).body["usage"]
    assert usage == {
        "duration_seconds": 0.0,
        "stt_audio_seconds": 4.2,
        "llm_prompt_tokens": 120,
        "llm_completion_tokens": 30,
        "tts_characters": 88,
        "turns": 2,
    }
