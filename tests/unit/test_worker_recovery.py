"""Recovering a lost agent: heartbeats naming the worker's rooms, one claim per silent peer, the
conversation carried in the room's metadata, and reconnecting the moment LiveKit is back."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from moto import mock_aws

from functions.store.dynamo import FleetStore
from infra.local.stack import free_port
from infra.template import create_sessions_table
from voice.table import Heartbeat, HeartbeatRoom
from worker.carry import (
    CARRY_KEY,
    MAX_CARRY_CHARS,
    MAX_TURNS,
    Turn,
    carried,
    chat_context,
    read_carry,
    with_carry,
)
from worker.emf import EmfEmitter
from worker.heartbeat import CapacityReporter, HeartbeatWriter
from worker.peer_watch import DEAD_AFTER_INTERVALS, FleetTable, PeerWatch, orphaned
from worker.reconnect import _WaitingSession, http_url
from worker.settings import WorkerEnv

TABLE = "voice-sessions-unit"
INTERVAL = 1.0


@pytest.fixture
def table() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_sessions_table(client, TABLE)
        yield client


def job(room: str, identity: str) -> Any:
    """What the reporter reads of a running job: its room and its agent's identity."""
    return SimpleNamespace(
        job=SimpleNamespace(room=SimpleNamespace(name=room)),
        accept_arguments=SimpleNamespace(identity=identity),
    )


def beat(worker_id: str, silent_for: float, rooms: int = 1) -> Heartbeat:
    at = datetime.now(UTC) - timedelta(seconds=silent_for)
    return Heartbeat(
        worker_id=worker_id,
        agent_name="openagents-voice",
        free_slots=1,
        total_slots=2,
        at=at,
        valid_until=at + timedelta(seconds=3 * INTERVAL),
        rooms=tuple(HeartbeatRoom(room=f"r{i}", identity=f"agent-{i}") for i in range(rooms)),
    )


async def test_a_heartbeat_names_the_rooms_of_the_workers_agents(table: Any) -> None:
    server = SimpleNamespace(id="AW_a", draining=False, active_jobs=[job("voice-r1", "agent-AJ_1")])
    writer = HeartbeatWriter(table, TABLE, "openagents-voice", interval=INTERVAL)
    reporter = CapacityReporter(server, writer, total=2, interval=INTERVAL, emf=EmfEmitter("T"))
    await reporter.beat()
    [read] = FleetTable(table, TABLE).heartbeats()
    assert read.rooms == (HeartbeatRoom(room="voice-r1", identity="agent-AJ_1"),)
    assert read.free_slots == 1 and read.taken_over_by is None
    # Admission reads the same items, rooms and all.
    assert FleetStore(table, TABLE).heartbeats(datetime.now(UTC))[0].rooms == read.rooms
    await reporter.aclose()
    assert FleetTable(table, TABLE).heartbeats()[0].rooms == ()  # a leaving worker hands none


@pytest.mark.parametrize(
    ("silent_for", "rooms", "me", "dead"),
    [
        (DEAD_AFTER_INTERVALS * INTERVAL + 0.5, 1, "AW_b", True),
        (DEAD_AFTER_INTERVALS * INTERVAL - 0.5, 1, "AW_b", False),  # one late write
        (DEAD_AFTER_INTERVALS * INTERVAL + 0.5, 0, "AW_b", False),  # no call to take over
        (DEAD_AFTER_INTERVALS * INTERVAL + 0.5, 1, "AW_a", False),  # its own
        (3600, 1, "AW_b", False),  # long gone: the control plane's backstops had it
    ],
)
def test_a_peer_is_orphaned_only_when_silent_with_calls(
    silent_for: float, rooms: int, me: str, dead: bool
) -> None:
    assert orphaned(beat("AW_a", silent_for, rooms), me, datetime.now(UTC), INTERVAL) is dead


def test_exactly_one_watcher_claims_a_silent_peer(table: Any) -> None:
    fleet = FleetTable(table, TABLE)
    silent = beat("AW_a", 5)
    table.put_item(TableName=TABLE, Item=silent.to_item())
    [seen] = fleet.heartbeats()
    claims = [fleet.claim(seen, by) for by in ("AW_b", "AW_c", "AW_b")]
    assert claims == [True, False, False]
    [after] = fleet.heartbeats()
    assert after.taken_over_by == "AW_b"
    assert not orphaned(after, "AW_c", datetime.now(UTC), INTERVAL)


def test_a_peer_that_beats_again_before_the_claim_is_not_taken_over(table: Any) -> None:
    fleet = FleetTable(table, TABLE)
    table.put_item(TableName=TABLE, Item=beat("AW_a", 5).to_item())
    [seen] = fleet.heartbeats()
    table.put_item(TableName=TABLE, Item=beat("AW_a", 0).to_item())  # it was only slow
    assert fleet.claim(seen, "AW_b") is False
    assert fleet.heartbeats()[0].taken_over_by is None


class FailingWriter:
    def __init__(self) -> None:
        self.fail = True
        self.calls = 0

    def write(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.fail:
            raise TimeoutError("read timeout")


async def test_a_worker_whose_heartbeats_fail_is_not_healthy_until_one_goes_through() -> None:
    server = SimpleNamespace(id="AW_a", draining=False, active_jobs=[])
    writer = FailingWriter()
    reporter = CapacityReporter(server, writer, total=2, interval=1, emf=EmfEmitter("T"))  # type: ignore[arg-type]
    await reporter.beat()
    assert reporter.healthy_since is None
    writer.fail = False
    before = time.monotonic()
    await reporter.beat()
    assert reporter.healthy_since is not None and reporter.healthy_since >= before
    writer.fail = True
    await reporter.beat()
    assert reporter.healthy_since is None


class Reporter:
    healthy_since: float | None = None


def watch(table: Any, me: str, reporter: Reporter, interval: float) -> PeerWatch:
    server = SimpleNamespace(id=me, draining=False)
    return PeerWatch(server, reporter, FleetTable(table, TABLE), WorkerEnv(), interval=interval)


async def test_a_silent_peer_is_taken_over_once_watched_silent_for_its_dead_time(
    table: Any,
) -> None:
    interval = 0.2
    mine = Reporter()
    mine.healthy_since = time.monotonic() - 60
    table.put_item(TableName=TABLE, Item=beat("AW_a", 0.0).to_item())
    watcher = watch(table, "AW_b", mine, interval)
    await watcher.look()
    assert FleetTable(table, TABLE).heartbeats()[0].taken_over_by is None
    await asyncio.sleep(interval * DEAD_AFTER_INTERVALS + 0.1)
    await watcher.look()  # no LiveKit here: the claim lands, the removal is logged as failed
    assert FleetTable(table, TABLE).heartbeats()[0].taken_over_by == "AW_b"


async def test_after_a_table_stall_no_worker_takes_over_peers_that_are_merely_late(
    table: Any,
) -> None:
    interval = 0.2
    # Every heartbeat is old after the table froze; this worker's writes went through just now.
    table.put_item(TableName=TABLE, Item=beat("AW_a", 20).to_item())
    mine = Reporter()
    mine.healthy_since = time.monotonic()
    watcher = watch(table, "AW_b", mine, interval)
    await watcher.look()
    assert FleetTable(table, TABLE).heartbeats()[0].taken_over_by is None
    await asyncio.sleep(interval)
    table.put_item(TableName=TABLE, Item=beat("AW_a", 0).to_item())  # the peer is heard again
    await asyncio.sleep(interval * DEAD_AFTER_INTERVALS)
    await watcher.look()
    assert FleetTable(table, TABLE).heartbeats()[0].taken_over_by is None
    # And a worker that cannot write its own heartbeats judges nobody.
    mine.healthy_since = None
    table.put_item(TableName=TABLE, Item=beat("AW_a", 20).to_item())
    assert await watch(table, "AW_c", mine, interval).look() == []


def test_the_carry_keeps_the_latest_turns_redacted_and_bounded() -> None:
    turns = [Turn(role="user", text=f"turn {i}: call me on +44 20 7946 0958") for i in range(30)]
    kept = carried(turns, ["phone"])
    assert len(kept) == MAX_TURNS
    assert kept[-1].text == "turn 29: call me on [phone]"
    huge = [Turn(role="assistant", text="x" * 5000) for _ in range(MAX_TURNS)]
    assert sum(len(t.text) for t in carried(huge, [])) <= MAX_CARRY_CHARS


def test_the_carry_lives_beside_other_room_metadata_and_reads_back() -> None:
    turns = [Turn(role="user", text="What are your opening hours?")]
    metadata = with_carry(json.dumps({"app": "kept"}), turns)
    assert json.loads(metadata)["app"] == "kept"
    assert read_carry(metadata) == turns
    assert json.loads(with_carry("not json", turns))[CARRY_KEY] == [turns[0].model_dump()]
    for unusable in ("", None, "[]", '{"voice.carry": [{"role": "robot", "text": 1}]}', "{"):
        assert read_carry(unusable) == []
    messages = chat_context(turns).items
    assert [(m.role, m.text_content) for m in messages] == [
        ("user", "What are your opening hours?")
    ]


def test_the_reconnect_url_is_livekits_http_root() -> None:
    assert http_url("ws://127.0.0.1:7880") == "http://127.0.0.1:7880/"
    assert http_url("wss://lk.example.com/path") == "https://lk.example.com/"


async def test_a_connect_attempt_waits_until_livekit_answers_then_goes_at_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()

    async def come_back_later() -> None:
        await asyncio.sleep(0.8)
        await web.TCPSite(runner, "127.0.0.1", port).start()

    async with aiohttp.ClientSession() as http:
        waiting = _WaitingSession(http, url)
        back = asyncio.create_task(come_back_later())
        started = time.monotonic()
        waited = await waiting.until_reachable()
        took = time.monotonic() - started
        await back
        # Waited for the server (no failed attempt for the library to back off from) and went
        # within a poll of its return.
        assert waited >= 0.7 and took < 0.8 + 0.6, (waited, took)
        assert await waiting.until_reachable() == 0.0
        assert waiting.closed is False  # everything else is the library's own session
    await runner.cleanup()
