"""On the whole local stack: old tokens bring no agent, late joins expire, lost dispatches recur."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from livekit import api as lkapi
from livekit import rtc

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.paths import CONFIG_FILE
from infra.local.stack import LocalStack, StackOptions
from tests.support.caller import Caller, wait_until
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.stack import fake_models_options, log_tail, poll_session
from tests.support.tools import missing_tool
from voice.table import JOIN_GRACE

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
# The promises, as bounds on waits (the outcome is asserted, never a duration).
ROOM_CLOSED_WITHIN = 5.0
AGENT_AFTER_REGISTRATION_WITHIN = 5.0
JOIN_TIMEOUT = 20  # long enough for the watchdog test to stop its worker first


def authority_config(run_dir: Path) -> str:
    """The shipped config with a short join window and a brisk watchdog, so tests wait little."""
    data = yaml.safe_load(CONFIG_FILE.read_text())
    realtime = data["voice"]["realtime"]
    realtime["limits"]["join_timeout"] = JOIN_TIMEOUT
    realtime["agent_watchdog"] = {
        "first_check": 1,
        "backoff": 1.5,
        "max_delay": 2,
        "max_dispatches": 15,
    }
    path = run_dir / "voice_config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    from infra.local.livekit import find_livekit_server

    if find_livekit_server() is None:
        missing_tool("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    run_dir = tmp_path_factory.mktemp("authority")
    opts: StackOptions = fake_models_options(run_dir, fake_openai)
    opts.config_uri = authority_config(run_dir)
    with LocalStack(opts) as running:
        yield running


class Knock:
    """A client that only connects (no microphone) with a session's old token, and watches."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.agents: list[str] = []
        self.closed = asyncio.Event()
        self.room.on("participant_connected", self._on_participant)
        self.room.on("disconnected", lambda *_: self.closed.set())

    def _on_participant(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agents.append(participant.identity)

    async def connect(self, created: dict[str, Any]) -> None:
        # Never cancelled: a connect abandoned half-way makes the rtc FFI panic and SIGTERM the
        # test process. A room closed during the handshake fails the connect: closed too.
        try:
            await self.room.connect(created["url"], created["token"])
        except rtc.ConnectError:
            self.closed.set()


async def room_exists(stack: LocalStack, room: str) -> bool:
    url = stack.livekit_url.replace("ws://", "http://")
    async with lkapi.LiveKitAPI(url, DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET) as lk:
        resp = await lk.room.list_rooms(lkapi.ListRoomsRequest(names=[room]))
    return any(r.name == room for r in resp.rooms)


async def assert_no_agent_and_room_closed(stack: LocalStack, created: dict[str, Any]) -> None:
    """Joins with the session's old token: the room is closed within 5 s and no agent came."""
    knock = Knock()
    await knock.connect(created)
    try:
        await asyncio.wait_for(knock.closed.wait(), ROOM_CLOSED_WITHIN)
    except TimeoutError as exc:
        raise AssertionError(f"the room stayed open\n{log_tail(stack, 'api', 'worker')}") from exc
    finally:
        await knock.room.disconnect()
    assert not await room_exists(stack, created["room_name"])
    assert knock.agents == [], log_tail(stack, "api", "worker")


async def create(api: httpx.AsyncClient) -> dict[str, Any]:
    resp = await api.post("/session", json={"agent_type": "single_agent", "initial_greeting": True})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_rejoin_after_the_call_ended_gets_no_agent_and_the_room_is_closed(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    created = await create(api)
    sid = created["session_id"]
    caller = Caller()
    await caller.join(created["url"], created["token"])
    try:
        await poll_session(api, sid, lambda s: s["agent_joined"], WAIT, "the agent")
    finally:
        await caller.leave()
    await poll_session(api, sid, lambda s: s["status"] == "ended", WAIT, "the call to end")

    await assert_no_agent_and_room_closed(stack, created)
    assert (await api.get(f"/session/{sid}")).json()["status"] == "ended"


async def test_join_after_delete_gets_no_agent_and_the_room_is_closed(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    created = await create(api)
    assert (await api.delete(f"/session/{created['session_id']}")).status_code == 200

    await assert_no_agent_and_room_closed(stack, created)


async def test_join_after_the_join_window_expires_the_session_without_an_agent(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    created = await create(api)
    join_by = datetime.fromisoformat(created["join_by"])
    # Past the window and the worker's grace for a late webhook: both refuse on their own.
    late = (join_by + JOIN_GRACE - datetime.now(UTC)).total_seconds() + 0.5
    await asyncio.sleep(max(0.0, late))

    await assert_no_agent_and_room_closed(stack, created)
    expired = await poll_session(
        api, created["session_id"], lambda s: s["status"] != "pending", WAIT, "the expiry"
    )
    assert (expired["status"], expired["end_reason"]) == ("expired", "never_joined")


async def test_a_dropped_dispatch_is_made_again_once_a_worker_registers(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    created = await create(api)
    sid = created["session_id"]
    # The only worker leaves the fleet; its last heartbeat lapses as it goes.
    stack.stop_worker(signal.SIGTERM)
    try:
        refused = await api.post("/session", json={})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "fleet_at_capacity"
        assert int(refused.headers["retry-after"]) > 0

        caller = Caller()
        await caller.join(created["url"], created["token"])
        try:
            # LiveKit drops the dispatch: no worker is registered. The worker starts 5 s later.
            await asyncio.sleep(5)
            stack.start_worker()
            registered_at = time.monotonic()
            try:
                await wait_until(
                    lambda: bool(caller.agents_joined),
                    AGENT_AFTER_REGISTRATION_WITHIN,
                    "an agent after the worker registered",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log_tail(stack, 'watchdog', 'api')}") from exc
            print(f"\nagent joined {time.monotonic() - registered_at:.2f} s after registration")
            body = await poll_session(api, sid, lambda s: s["agent_joined"], WAIT, "agent_joined")
            assert body["status"] == "active"
        finally:
            await caller.leave()
    finally:
        if "worker" not in stack.procs:
            stack.start_worker()
