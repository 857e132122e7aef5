"""The control plane's LiveKit calls against two nodes sharing Redis: a room held by one node is
listed, inspected and closed through the other, as the reaper, audit and watchdog do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from livekit import api

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from functions.store.livekit import LiveKitCredentials, LiveKitRooms
from infra.local.livekit import node_id_from_log, room_nodes
from infra.local.sip import SipOptions, SipServices, find_redis_server
from tests.support.livekit import LiveKitServer, SilentCaller, start_livekit_server, stop_process
from tests.support.tools import missing_tool

pytestmark = pytest.mark.livekit


@dataclass
class Nodes:
    servers: list[LiveKitServer]
    redis_address: str
    run_dir: Path

    def node_of(self, room: str) -> int | None:
        logs = [self.run_dir / name for name in ("livekit.log", "livekit-2.log")]
        ids = {node_id_from_log(log): i for i, log in enumerate(logs)}
        return ids.get(room_nodes(self.redis_address).get(room))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    if find_redis_server() is None:
        missing_tool("no redis-server: run `make sip-deps` (or put one on PATH)")
    run_dir = tmp_path_factory.mktemp("nodes")
    with SipServices(SipOptions.on_free_ports(run_dir)) as redis:
        redis.start_redis()
        servers: list[LiveKitServer] = []
        try:
            for node in range(2):
                servers.append(
                    start_livekit_server(
                        run_dir,
                        redis_address=redis.opts.redis_address,
                        node=node,
                        nodes=2,
                        log_level="info",
                    )
                )
            yield Nodes(servers, redis.opts.redis_address, run_dir)
        finally:
            for server in servers:
                stop_process(server.process)


def join_token(room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return (
        api.AccessToken(DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET)
        .with_identity("caller")
        .with_grants(grants)
        .to_jwt()
    )


def test_a_room_on_node_two_is_listed_inspected_and_closed_through_node_one(nodes: Nodes) -> None:
    one, two = nodes.servers
    rooms = LiveKitRooms(LiveKitCredentials(one.url, DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET))
    with SilentCaller() as caller:
        caller.join(two.url, join_token("room-on-two"))
        assert nodes.node_of("room-on-two") == 1

        listed = asyncio.run(rooms.list_rooms())
        assert "room-on-two" in listed
        people = asyncio.run(rooms.list_participants("room-on-two"))
        assert [p.identity for p in people] == ["caller"]

        asyncio.run(rooms.delete_room("room-on-two"))
        deadline = time.monotonic() + 10
        while room_nodes(nodes.redis_address).get("room-on-two"):
            assert time.monotonic() < deadline, "the room's node never closed it"
            time.sleep(0.1)
        assert "room-on-two" not in asyncio.run(rooms.list_rooms())
