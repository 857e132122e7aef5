"""A real livekit-server on free loopback ports, with the dev keys, for one test or module."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from livekit import api, rtc

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.livekit import find_livekit_server, livekit_yaml, node_region
from infra.local.stack import HOST, free_port
from tests.support.tools import missing_tool


@dataclass
class LiveKitServer:
    url: str
    http_url: str
    api_key: str
    api_secret: str
    process: subprocess.Popen

    def api(self) -> api.LiveKitAPI:
        """A server API client; use it as `async with server.api() as lk:`."""
        return api.LiveKitAPI(self.http_url, self.api_key, self.api_secret)

    def create_room(self, name: str) -> None:
        """Creates a room from synchronous test code, as a caller's join would."""

        async def create() -> None:
            async with self.api() as lk:
                await lk.room.create_room(api.CreateRoomRequest(name=name))

        asyncio.run(create())


class SilentCaller:
    """A caller who joins a room and stays until hanging up, on its own event loop, so that
    synchronous test code (Lambda handlers) runs while the call goes on."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._room: rtc.Room | None = None

    def join(self, url: str, token: str) -> None:
        async def join() -> None:
            self._room = rtc.Room()
            await self._room.connect(url, token)

        self._loop.run_until_complete(join())

    def hang_up(self) -> None:
        if self._loop.is_closed():
            return
        if self._room is not None:
            self._loop.run_until_complete(self._room.disconnect())
        self._loop.close()

    def __enter__(self) -> SilentCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.hang_up()


def start_livekit_server(
    tmp: Path,
    webhook_url: str | None = None,
    *,
    redis_address: str | None = None,
    node: int = 0,
    nodes: int = 1,
    log_level: str = "warn",
) -> LiveKitServer:
    """One server; with `nodes` > 1 it is node `node` (0-based) of that many sharing
    `redis_address`, and places a new room on itself when a client joins through it."""
    binary = find_livekit_server()
    if binary is None:
        missing_tool("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    port, tcp, udp = free_port(), free_port(), free_port()
    name = "livekit" if node == 0 else f"livekit-{node + 1}"
    cfg = tmp / f"{name}.yaml"
    several = {"region": node_region(node), "regions": [node_region(i) for i in range(nodes)]}
    cfg.write_text(
        livekit_yaml(
            port,
            tcp,
            udp,
            webhook_url=webhook_url,
            log_level=log_level,
            redis_address=redis_address,
            **(several if nodes > 1 else {}),  # type: ignore[arg-type]
        )
    )
    log_path = tmp / f"{name}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [binary, "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"livekit-server exited: {log_path.read_text()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("livekit-server did not start within 20 s")
    return LiveKitServer(
        f"ws://{HOST}:{port}", f"http://{HOST}:{port}", DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET, proc
    )


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
