"""Only live sessions get an agent: webhook events of a dead session's room close it."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke
from tests.support.livekit import LiveKitServer
from tests.support.livekit_events import event_body, post_event

BASE = "/voice/realtime"


def use_join_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seconds: int) -> None:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["limits"]["join_timeout"] = seconds
    path = tmp_path / "voice.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()


def create(cp: ControlPlane, user: str = "alice") -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(user), json={})
    assert r.status == 201, r.body
    return r.body


def status_of(cp: ControlPlane, sid: str) -> dict:
    return invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers()).body


def room_names(server: LiveKitServer) -> set[str]:
    from livekit import api

    async def names() -> set[str]:
        async with server.api() as lk:
            return {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}

    return asyncio.run(names())


def test_a_session_carries_its_join_window(control_plane: ControlPlane) -> None:
    s = create(control_plane)
    got = status_of(control_plane, s["session_id"])
    join_by = datetime.fromisoformat(s["join_by"])
    # Stored to the millisecond.
    assert abs(datetime.fromisoformat(got["join_by"]) - join_by) < timedelta(milliseconds=1)
    created_at = datetime.fromisoformat(got["created_at"])
    assert abs(join_by - created_at - timedelta(seconds=120)) < timedelta(milliseconds=1)


def test_a_join_after_the_join_window_expires_the_session_and_frees_the_slot(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_join_timeout(monkeypatch, tmp_path, 1)
    sessions = [create(control_plane) for _ in range(3)]
    late = event_body(
        "participant_joined", sessions[0]["room_name"], "caller-alice", at=time.time() + 5
    )
    r = post_event(late)
    # LiveKit is unreachable here: the room deletion is queued, the session expires regardless.
    assert r.body == {"session_id": sessions[0]["session_id"], "action": "expired"}
    got = status_of(control_plane, sessions[0]["session_id"])
    assert (got["status"], got["end_reason"]) == ("expired", "never_joined")
    assert invoke("POST", f"{BASE}/session", headers=control_plane.headers(), json={}).status == 201


def test_a_join_inside_the_join_window_activates(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_join_timeout(monkeypatch, tmp_path, 60)
    s = create(control_plane)
    r = post_event(event_body("room_started", s["room_name"], at=time.time() + 30))
    assert r.body["action"] == "activated"


@pytest.mark.livekit
def test_a_room_reopened_by_an_ended_session_token_is_closed(
    control_plane: ControlPlane, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", livekit_server.url)
    reset_control_plane()
    s = create(control_plane)
    assert (
        invoke(
            "DELETE", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers()
        ).status
        == 200
    )
    # The caller's old token recreates the room, as LiveKit does on a join.
    livekit_server.create_room(s["room_name"])
    assert s["room_name"] in room_names(livekit_server)
    r = post_event(event_body("room_started", s["room_name"]))
    assert r.body == {"session_id": s["session_id"], "action": "closed"}
    assert s["room_name"] not in room_names(livekit_server)
    assert status_of(control_plane, s["session_id"])["status"] == "ended"


@pytest.mark.livekit
def test_a_session_room_the_table_does_not_know_is_closed(
    control_plane: ControlPlane, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", livekit_server.url)
    reset_control_plane()
    room = f"voice-alice-{uuid.uuid4()}"
    livekit_server.create_room(room)
    r = post_event(event_body("participant_joined", room, "caller-alice"))
    assert r.body["action"] == "closed"
    assert room not in room_names(livekit_server)
