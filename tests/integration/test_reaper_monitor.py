"""The scheduled handlers (reaper, monitor) through their Lambda entry points, with moto and LiveKit."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from infra.local.paths import CONFIG_FILE
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.livekit import LiveKitServer, SilentCaller
from tests.support.livekit_events import event_body, post_event

if TYPE_CHECKING:
    from functions.sessions.reaper import Reaper

BASE = "/voice/realtime"


def use_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **limits: object) -> None:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["limits"].update(limits)
    path = tmp_path / "voice.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()


def use_livekit(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LIVEKIT_URL", url)
    reset_control_plane()


@pytest.fixture
def reachable_livekit(
    control_plane: ControlPlane, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> LiveKitServer:
    """A real LiveKit server, with the control plane under test pointed at it."""
    use_livekit(monkeypatch, livekit_server.url)
    return livekit_server


def reap() -> dict:
    from functions.background.reaper import handler

    return handler({"source": "aws.events"}, LambdaContext(function_name="voice-reaper"))


def create(cp: ControlPlane) -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(), json={})
    assert r.status == 201, r.body
    return r.body


def status(cp: ControlPlane, sid: str) -> dict:
    return invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers()).body


@pytest.mark.livekit
def test_reaper_expires_sessions_never_joined_within_the_token_ttl(
    control_plane: ControlPlane,
    reachable_livekit: LiveKitServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # LiveKit must be reachable: the reaper expires a session only once it saw nobody joined.
    use_config(monkeypatch, tmp_path, token_ttl_hours=0.0003)  # about one second
    stale = create(control_plane)
    time.sleep(1.3)
    fresh_cfg = tmp_path / "fresh"
    fresh_cfg.mkdir()
    use_config(monkeypatch, fresh_cfg, token_ttl_hours=2)
    fresh = create(control_plane)
    counts = reap()
    assert counts["ReaperExpired"] == 1
    assert status(control_plane, stale["session_id"])["status"] == "expired"
    assert status(control_plane, stale["session_id"])["end_reason"] == "never_joined"
    assert status(control_plane, fresh["session_id"])["status"] == "pending"
    assert reap()["ReaperExpired"] == 0


def test_reaper_ends_sessions_past_max_duration_and_frees_slots(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    s = [create(control_plane) for _ in range(3)]
    # The caller joined two hours ago (per the webhook), so the one-hour limit has passed.
    post_event(
        event_body("participant_joined", s[0]["room_name"], "caller-alice", at=time.time() - 7200)
    )
    capsys.readouterr()
    counts = reap()
    assert counts["ReaperEndedOverDuration"] == 1
    st = status(control_plane, s[0]["session_id"])
    assert (st["status"], st["end_reason"]) == ("ended", "max_duration")
    assert create(control_plane)["status"] == "pending"
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [emf] = [e for e in emitted if "ReaperEndedOverDuration" in e]
    assert emf["ReaperEndedOverDuration"] == [1.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "VoiceAgents"


@pytest.mark.livekit
def test_reaper_ends_sessions_whose_room_is_gone_and_retries_room_deletions(
    control_plane: ControlPlane, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = create(control_plane)
    post_event(
        event_body("participant_joined", gone["room_name"], "caller-alice", at=time.time() - 600)
    )
    queued = create(control_plane)
    # LiveKit is unreachable: the DELETE ends the session and queues the room deletion.
    assert (
        invoke(
            "DELETE", f"{BASE}/session/{queued['session_id']}", headers=control_plane.headers()
        ).status
        == 200
    )
    use_livekit(monkeypatch, livekit_server.url)
    counts = reap()
    assert counts["ReaperEndedRoomGone"] == 1
    assert counts["ReaperRoomsDeleted"] == 1
    assert counts["livekit_reachable"] is True
    assert status(control_plane, gone["session_id"])["end_reason"] == "room_gone"
    item = control_plane.dynamodb.get_item(
        TableName=control_plane.table,
        Key={"pk": {"S": f"SESSION#{queued['session_id']}"}, "sk": {"S": "SESSION"}},
    )["Item"]
    assert item["room_delete_pending"] == {"BOOL": False}
    assert "gsi2pk" not in item
    assert reap()["ReaperRoomsDeleted"] == 0


def test_monitor_publishes_livekit_unreachable(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.background.monitor import handler

    create(control_plane)
    capsys.readouterr()
    out = handler({}, LambdaContext(function_name="voice-monitor"))
    assert out["livekit_connected"] is False
    assert out["active_sessions"] == 1
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [emf] = [e for e in emitted if "LiveKitReachable" in e]
    assert emf["LiveKitReachable"] == [0.0]
    assert emf["ActiveSessions"] == [1.0]
    assert "ActiveRooms" not in emf


@pytest.mark.livekit
def test_monitor_and_health_see_a_reachable_livekit(
    control_plane: ControlPlane, reachable_livekit: LiveKitServer
) -> None:
    from functions.background.monitor import handler

    reachable_livekit.create_room("voice-x-room")
    out = handler({}, LambdaContext(function_name="voice-monitor"))
    assert out == {
        "status": "healthy",
        "livekit_connected": True,
        "active_sessions": 0,
        "active_rooms": 1,
        "rolled_back": [],
    }
    health = invoke("GET", f"{BASE}/health").body
    assert health["status"] == "healthy"
    assert health["active_rooms"] == 1


@pytest.mark.livekit
def test_delete_removes_the_livekit_room(
    control_plane: ControlPlane, reachable_livekit: LiveKitServer
) -> None:
    from livekit import api

    s = create(control_plane)

    async def rooms() -> list[str]:
        async with reachable_livekit.api() as lk:
            return [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]

    reachable_livekit.create_room(s["room_name"])
    assert s["room_name"] in asyncio.run(rooms())
    r = invoke("DELETE", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert r.body["status"] == "ended"
    assert s["room_name"] not in asyncio.run(rooms())
    item = control_plane.dynamodb.get_item(
        TableName=control_plane.table,
        Key={"pk": {"S": f"SESSION#{s['session_id']}"}, "sk": {"S": "SESSION"}},
    )["Item"]
    assert "room_delete_pending" not in item


@pytest.mark.livekit
def test_reaper_redispatches_an_agent_that_never_joined_then_fails_the_session(
    control_plane: ControlPlane,
    reachable_livekit: LiveKitServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one re-dispatch cap, agent_watchdog.max_dispatches, governs the reaper's too.
    config = config_with(tmp_path / "voice.yaml", {"agent_watchdog": {"max_dispatches": 2}})
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config))
    reset_control_plane()
    s = create(control_plane)

    async def dispatches() -> list[str]:
        async with reachable_livekit.api() as lk:
            found = await lk.agent_dispatch.list_dispatch(room_name=s["room_name"])
            return [d.agent_name for d in found]

    with SilentCaller() as caller:
        caller.join(s["url"], s["token"])
        # The caller joined a minute ago and no agent ever came (its dispatch found no worker).
        post_event(
            event_body("participant_joined", s["room_name"], "caller-alice", at=time.time() - 60)
        )
        counts = reap()
        assert counts["ReaperAgentsRedispatched"] == 1
        assert "openagents-voice" in asyncio.run(dispatches())
        assert status(control_plane, s["session_id"])["status"] == "active"
        # Within the grace period after the re-dispatch nothing more happens.
        assert reap()["ReaperAgentsRedispatched"] == 0

        counts = asyncio.run(reaper_at(timedelta(minutes=1)).run())
        assert counts.agents_redispatched == 1, "the second of max_dispatches = 2"
        counts = asyncio.run(reaper_at(timedelta(minutes=2)).run())
        assert counts.failed_no_agent == 1
    st = status(control_plane, s["session_id"])
    assert (st["status"], st["end_reason"]) == ("failed", "agent_lost")


def reaper_at(later: timedelta, **limits: float) -> Reaper:
    """A Reaper over the live container whose clock runs `later` than now."""
    from functions.sessions.reaper import Reaper
    from functions.wiring import get_container

    return Reaper(get_container().sessions, clock=lambda: datetime.now(UTC) + later, **limits)


def test_reaper_handles_at_most_one_batch_of_sessions_per_rule_and_run(
    control_plane: ControlPlane,
) -> None:
    sids = [create(control_plane)["session_id"] for _ in range(3)]
    first = asyncio.run(reaper_at(timedelta(days=1), batch=2).run())
    assert first.expired == 2
    assert first.out_of_time is False
    second = asyncio.run(reaper_at(timedelta(days=1), batch=2).run())
    assert second.expired == 1
    assert {status(control_plane, sid)["status"] for sid in sids} == {"expired"}


def test_reaper_with_no_time_left_changes_nothing_and_says_it_ran_out(
    control_plane: ControlPlane,
) -> None:
    sid = create(control_plane)["session_id"]
    counts = asyncio.run(reaper_at(timedelta(days=1), budget_seconds=0).run())
    assert counts.out_of_time is True
    assert counts.metrics()["ReaperExpired"] == 0
    assert status(control_plane, sid)["status"] == "pending"


def test_reaper_without_livekit_still_ends_overdue_sessions_but_not_by_room(
    control_plane: ControlPlane,
) -> None:
    # The control plane's LiveKit URL points nowhere: the room list cannot be read.
    overdue = create(control_plane)
    post_event(
        event_body(
            "participant_joined", overdue["room_name"], "caller-alice", at=time.time() - 7200
        )
    )
    roomless = create(control_plane)
    post_event(
        event_body(
            "participant_joined", roomless["room_name"], "caller-alice", at=time.time() - 600
        )
    )
    counts = reap()
    assert counts["livekit_reachable"] is False
    assert counts["ReaperEndedOverDuration"] == 1
    assert counts["ReaperEndedRoomGone"] == 0
    assert status(control_plane, overdue["session_id"])["status"] == "ended"
    assert status(control_plane, roomless["session_id"])["status"] == "active"
