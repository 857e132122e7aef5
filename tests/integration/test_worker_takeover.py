"""A worker that dies whole leaves its agents in their rooms; a peer reading the fleet's
heartbeats removes them from a real LiveKit server (so the control plane sends new ones), once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from livekit import api, rtc
from moto import mock_aws
from pydantic import SecretStr

from infra.template import create_sessions_table
from tests.support.livekit import LiveKitServer
from voice.table import Heartbeat, HeartbeatRoom
from worker.peer_watch import DEAD_AFTER_INTERVALS, FleetTable, PeerWatch
from worker.settings import WorkerEnv

pytestmark = pytest.mark.livekit

TABLE = "voice-sessions-takeover"
INTERVAL = 0.2


async def identities(lk: api.LiveKitAPI, room: str) -> list[str]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return [p.identity for p in resp.participants]


def token(server: LiveKitServer, room: str, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def test_a_peer_removes_a_silent_workers_agents_from_their_rooms_once(
    livekit: LiveKitServer,
) -> None:
    room = "voice-it-takeover"
    # Stands for the dead worker's agent: a participant nobody else will remove.
    dead_agent = rtc.Room()
    await dead_agent.connect(livekit.url, token(livekit, room, "agent-AJ_dead"))
    caller = rtc.Room()
    await caller.connect(livekit.url, token(livekit, room, "caller"))
    env = WorkerEnv(
        livekit_url=livekit.http_url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=SecretStr(livekit.api_secret),
    )
    reporter = SimpleNamespace(healthy_since=time.monotonic() - 60)
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_sessions_table(client, TABLE)
            now = datetime.now(UTC)
            silent = Heartbeat(
                worker_id="AW_dead",
                agent_name="openagents-voice",
                free_slots=3,
                total_slots=4,
                at=now,
                valid_until=now,
                rooms=(HeartbeatRoom(room=room, identity="agent-AJ_dead"),),
            )
            client.put_item(TableName=TABLE, Item=silent.to_item())
            watchers: list[Any] = [
                PeerWatch(
                    SimpleNamespace(id=me, draining=False),
                    reporter,
                    FleetTable(client, TABLE),
                    env,
                    interval=INTERVAL,
                )
                for me in ("AW_live_1", "AW_live_2")
            ]
            started = time.monotonic()
            removed: list[list[str]] = [[], []]
            while not any(removed):
                assert time.monotonic() - started < 10, "the silent worker was never taken over"
                removed = [await w.look() for w in watchers]
                await asyncio.sleep(INTERVAL / 2)
            took = time.monotonic() - started
            # Exactly one watcher acted; the other found it claimed.
            assert sorted(map(len, removed)) == [0, 1], removed
            assert [r for r in removed if r] == [[room]]
            assert await asyncio.gather(*(w.look() for w in watchers)) == [[], []]
        async with livekit.api() as lk:
            assert await identities(lk, room) == ["caller"]
        assert took < INTERVAL * DEAD_AFTER_INTERVALS + 2.0, took
    finally:
        await caller.disconnect()
        await dead_agent.disconnect()
