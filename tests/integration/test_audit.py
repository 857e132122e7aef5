"""The invariant check through `python -m functions.audit` and the reaper, on moto and LiveKit."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from functions.audit import main as audit_main
from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.livekit import LiveKitServer
from tests.support.livekit_events import event_body, post_event

BASE = "/voice/realtime"
pytestmark = pytest.mark.livekit


@pytest.fixture
def lk(
    control_plane: ControlPlane, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> LiveKitServer:
    monkeypatch.setenv("LIVEKIT_URL", livekit_server.url)
    reset_control_plane()
    return livekit_server


def create(cp: ControlPlane, user: str = "alice") -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(user), json={})
    assert r.status == 201, r.body
    return r.body


def reap() -> dict:
    from functions.background.reaper import handler

    return handler({"source": "aws.events"}, LambdaContext(function_name="voice-reaper"))


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = audit_main(list(args))
    return code, capsys.readouterr().out


def room_names(server: LiveKitServer) -> set[str]:
    from livekit import api

    async def names() -> set[str]:
        async with server.api() as client:
            return {r.name for r in (await client.room.list_rooms(api.ListRoomsRequest())).rooms}

    return asyncio.run(names())


def set_counter(cp: ControlPlane, user: str, live: int, updated: datetime) -> None:
    cp.dynamodb.put_item(
        TableName=cp.table,
        Item={
            "pk": {"S": f"USER#{user}"},
            "sk": {"S": "LIMIT"},
            "live": {"N": str(live)},
            "updated_at": {"S": updated.isoformat()},
        },
    )


def test_a_consistent_platform_audits_clean(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s = create(control_plane)
    create(control_plane, "bob")
    lk.create_room(s["room_name"])
    code, out = audit(capsys)
    assert code == 0, out
    assert "2 users, 2 live sessions, LiveKit rooms: 1" in out and out.rstrip().endswith("clean")


def test_a_leaked_slot_is_reported_then_repaired_by_the_reaper(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    create(control_plane)
    # A slot taken by a session that never got written, an hour ago: the user is one short.
    set_counter(control_plane, "alice", 2, datetime.now(UTC) - timedelta(hours=1))
    code, out = audit(capsys)
    assert code == 1
    assert "VIOLATION counter_mismatch alice: counter says 2 live, the user has 1" in out
    assert reap()["AuditCountersRepaired"] == 1
    code, out = audit(capsys)
    assert code == 0, out
    for _ in range(2):  # the limit is 3: both freed slots are usable again
        create(control_plane)


def test_a_counter_a_create_just_touched_is_reported_but_left_alone(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    create(control_plane)
    set_counter(control_plane, "alice", 2, datetime.now(UTC))
    code, out = audit(capsys, "--repair")
    assert code == 1 and "VIOLATION counter_mismatch alice" in out
    item = control_plane.dynamodb.get_item(
        TableName=control_plane.table, Key={"pk": {"S": "USER#alice"}, "sk": {"S": "LIMIT"}}
    )["Item"]
    assert item["live"]["N"] == "2"


def test_a_counter_below_the_live_sessions_is_raised_at_once(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    create(control_plane)
    create(control_plane)
    set_counter(control_plane, "alice", 0, datetime.now(UTC))
    code, out = audit(capsys, "--repair")
    assert code == 0, out
    assert "repaired counter_mismatch alice: counter says 0 live" in out and "set to 2" in out


def test_a_room_left_open_after_its_session_ended_is_deleted_by_the_reaper(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s = create(control_plane)
    invoke("DELETE", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    lk.create_room(s["room_name"])  # the caller's token recreated it after the end
    code, out = audit(capsys)
    assert code == 1 and f"VIOLATION room_without_session {s['room_name']}" in out
    assert reap()["AuditRoomsDeleted"] == 1
    assert s["room_name"] not in room_names(lk)
    assert audit(capsys)[0] == 0


def test_a_room_no_session_names_is_reported_and_never_deleted(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    lk.create_room("someone-elses-room")
    reap()
    code, out = audit(capsys)
    assert code == 1
    assert "VIOLATION room_without_session someone-elses-room: LiveKit has this room" in out
    assert "someone-elses-room" in room_names(lk)


def test_an_active_session_whose_room_is_gone_past_the_grace_is_a_violation(
    control_plane: ControlPlane, lk: LiveKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s = create(control_plane)
    # The caller joined five minutes ago; the room is gone and its room_finished was lost.
    post_event(event_body("participant_joined", s["room_name"], "caller", at=time.time() - 300))
    code, out = audit(capsys)
    assert code == 1 and f"VIOLATION live_without_room {s['session_id']}" in out
    reap()  # the reaper's room-gone rule ends it
    assert audit(capsys)[0] == 0


def test_a_pending_session_past_its_join_deadline_without_a_room_is_a_violation(
    control_plane: ControlPlane,
    lk: LiveKitServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["limits"]["token_ttl_hours"] = 0.0003  # about a second
    (tmp_path / "voice.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VOICE_CONFIG_URI", str(tmp_path / "voice.yaml"))
    reset_control_plane()
    s = create(control_plane)
    time.sleep(1.5)
    code, out = audit(capsys)
    assert code == 1 and f"VIOLATION live_without_room {s['session_id']}" in out


def test_an_unreachable_livekit_fails_the_audit_and_says_so(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    create(control_plane)
    code, out = audit(capsys, "--json")
    assert code == 1 and '"rooms": null' in out
