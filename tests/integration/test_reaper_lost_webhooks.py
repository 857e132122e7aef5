"""The reaper with every LiveKit webhook lost: it reads the room, never cuts a live call, and
makes a hung-up call final at its next run. A real LiveKit server sends no webhooks here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from livekit import api

from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.livekit import LiveKitServer, SilentCaller

BASE = "/voice/realtime"


def use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, livekit_url: str | None, **limits: int):
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"]["limits"].update(limits)
    path = tmp_path / "voice.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    if livekit_url is not None:
        monkeypatch.setenv("LIVEKIT_URL", livekit_url)
    reset_control_plane()


def create(cp: ControlPlane) -> dict:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(), json={})
    assert r.status == 201, r.body
    return r.body


def status(cp: ControlPlane, sid: str) -> dict:
    return invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers()).body


def reap(later: timedelta = timedelta(0)) -> dict[str, int]:
    """One reaper run through its Lambda entry point, or (`later`) on a clock that runs ahead."""
    if not later:
        from functions.background.reaper import handler

        return handler({"source": "aws.events"}, LambdaContext(function_name="voice-reaper"))
    from functions.sessions.reaper import Reaper
    from functions.wiring import get_container

    reaper = Reaper(get_container().sessions, clock=lambda: datetime.now(UTC) + later)
    return asyncio.run(reaper.run()).metrics()


def occupancy(server: LiveKitServer, room: str) -> int | None:
    """Participants in `room` now; None when LiveKit has no such room."""

    async def read() -> int | None:
        async with server.api() as lk:
            if not (await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms:
                return None
            req = api.ListParticipantsRequest(room=room)
            return len((await lk.room.list_participants(req)).participants)

    return asyncio.run(read())


def wait_until_past(deadline: str) -> None:
    time.sleep(max(0.0, (datetime.fromisoformat(deadline) - datetime.now(UTC)).total_seconds()))
    time.sleep(0.3)


@pytest.fixture
def caller() -> Iterator[SilentCaller]:
    with SilentCaller() as c:
        yield c


@pytest.mark.livekit
def test_a_call_whose_webhooks_are_all_lost_is_activated_not_expired_and_ended_after_hang_up(
    control_plane: ControlPlane,
    livekit_server: LiveKitServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caller: SilentCaller,
) -> None:
    from functions.sessions.reaper import CLOCK_SKEW

    use(monkeypatch, tmp_path, livekit_server.url, join_timeout=2)
    s = create(control_plane)
    caller.join(s["url"], s["token"])
    joined = time.time()
    wait_until_past(s["join_by"])

    counts = reap()
    assert (counts["ReaperActivated"], counts["ReaperExpired"]) == (1, 0)
    st = status(control_plane, s["session_id"])
    assert st["status"] == "active"
    assert abs(datetime.fromisoformat(st["joined_at"]).timestamp() - joined) < 1.5
    # Still talking: later runs leave the call alone, also once the join is well in the past.
    assert reap(later=CLOCK_SKEW)["ReaperEndedRoomGone"] == 0
    assert occupancy(livekit_server, s["room_name"]) == 1
    assert status(control_plane, s["session_id"])["status"] == "active"

    caller.hang_up()
    hung_up = time.time()
    deadline = time.monotonic() + 10
    while occupancy(livekit_server, s["room_name"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    # The first run after the hang-up makes the session final (the join is CLOCK_SKEW old).
    assert reap(later=CLOCK_SKEW)["ReaperEndedRoomGone"] == 1
    seen_ended = time.time()
    st = status(control_plane, s["session_id"])
    assert (st["status"], st["end_reason"]) == ("ended", "room_gone")
    # Its duration is the call's, up to the run that saw it end: not 0, not a join window.
    duration = st["usage"]["duration_seconds"]
    assert hung_up - joined - 1.5 <= duration <= seen_ended - joined + 1.5


@pytest.mark.livekit
def test_a_session_whose_room_is_empty_or_joined_too_late_expires_at_its_join_window(
    control_plane: ControlPlane,
    livekit_server: LiveKitServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caller: SilentCaller,
) -> None:
    use(monkeypatch, tmp_path, livekit_server.url, join_timeout=1)
    nobody = create(control_plane)
    late = create(control_plane)
    wait_until_past(late["join_by"])
    # The late caller's token still opens the room (LiveKit does not know the join window).
    caller.join(late["url"], late["token"])
    fresh_cfg = tmp_path / "fresh"
    fresh_cfg.mkdir()
    use(monkeypatch, fresh_cfg, None, join_timeout=120)
    fresh = create(control_plane)

    counts = reap()
    assert (counts["ReaperActivated"], counts["ReaperExpired"]) == (0, 2)
    for s in (nobody, late):
        st = status(control_plane, s["session_id"])
        assert (st["status"], st["end_reason"]) == ("expired", "never_joined")
    assert occupancy(livekit_server, late["room_name"]) is None  # closed with the late caller in it
    assert status(control_plane, fresh["session_id"])["status"] == "pending"
    assert reap()["ReaperExpired"] == 0


def test_without_livekit_a_pending_session_expires_only_when_no_call_could_still_be_running(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The control plane's LiveKit URL points nowhere: nobody can say whether the caller is in.
    use(monkeypatch, tmp_path, None, join_timeout=1, max_session_duration=60)
    s = create(control_plane)
    wait_until_past(s["join_by"])
    counts = reap()
    assert (counts["ReaperExpired"], counts["livekit_reachable"]) == (0, False)
    assert status(control_plane, s["session_id"])["status"] == "pending"
    # Past the join window by more than the longest call: expired, though LiveKit is still out.
    assert reap(later=timedelta(seconds=61))["ReaperExpired"] == 1
    st = status(control_plane, s["session_id"])
    assert (st["status"], st["end_reason"]) == ("expired", "never_joined")


def dispatched(server: LiveKitServer, room: str) -> list[dict]:
    """The metadata of every agent dispatch LiveKit holds for `room`."""
    import json

    async def read() -> list[dict]:
        async with server.api() as lk:
            return [json.loads(d.metadata) for d in await lk.agent_dispatch.list_dispatch(room)]

    return asyncio.run(read())


@pytest.mark.livekit
def test_an_agent_that_never_came_is_sent_again_with_the_greeting_and_the_calls_choices(
    control_plane: ControlPlane,
    livekit_server: LiveKitServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caller: SilentCaller,
) -> None:
    from functions.sessions.reaper import AGENT_JOIN_GRACE, CLOCK_SKEW

    use(monkeypatch, tmp_path, livekit_server.url, join_timeout=2)
    choices = {
        "greeting": "Hi {{name}}, this is the bakery.",
        "variables": {"name": "Dana"},
        "language": "de",
    }
    r = invoke("POST", f"{BASE}/session", headers=control_plane.headers(), json=choices)
    assert r.status == 201, r.body
    s = r.body
    # No worker anywhere: LiveKit drops the token's dispatch, as after a LiveKit restart.
    caller.join(s["url"], s["token"])
    wait_until_past(s["join_by"])
    assert reap()["ReaperActivated"] == 1
    assert reap(later=AGENT_JOIN_GRACE + CLOCK_SKEW)["ReaperAgentsRedispatched"] == 1
    sent = dispatched(livekit_server, s["room_name"])
    assert len(sent) == 2  # the token's and the reaper's
    for metadata in sent:
        # Nobody greeted this caller yet: the agent sent again still owes the greeting.
        assert metadata["initial_greeting"] is True, metadata
        assert {k: metadata.get(k) for k in choices} == choices
