"""The local LiveKit server: where its binary is, and its loopback config with the dev keys.

Several nodes share one Redis (LiveKit's distributed mode). Each node is its own region, and the
region-aware node selector places a new room on the node nearest the one the client connected
through: locally, with no load balancer, a client picks a room's node by the URL it dials.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.paths import ROOT


def find_livekit_server() -> str | None:
    for candidate in (
        os.environ.get("LIVEKIT_SERVER_BIN"),
        shutil.which("livekit-server"),
        str(ROOT / ".bin" / "livekit-server"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def livekit_yaml(
    port: int,
    tcp_port: int,
    udp_port: int,
    webhook_url: str | None = None,
    log_level: str = "info",
    redis_address: str | None = None,
    api_key: str = DEV_LIVEKIT_KEY,
    api_secret: str = DEV_LIVEKIT_SECRET,
    region: str | None = None,
    regions: Sequence[str] = (),
) -> str:
    """A livekit-server config on loopback (the dev keys unless given), optionally sending webhooks.

    `region` (one of `regions`, every node's) makes this node one of several sharing `redis_address`.
    """
    lines = [
        f"port: {port}",
        "bind_addresses: ['127.0.0.1']",
        "rtc:",
        f"  tcp_port: {tcp_port}",
        f"  udp_port: {udp_port}",
        "  use_external_ip: false",
        "  node_ip: 127.0.0.1",
        "keys:",
        f"  {api_key}: {api_secret}",
        "logging:",
        f"  level: {log_level}",
    ]
    if webhook_url:
        lines += ["webhook:", f"  api_key: {api_key}", "  urls:", f"    - {webhook_url}"]
    if redis_address:
        lines += ["redis:", f"  address: {redis_address}"]
    if region:
        lines += [f"region: {region}", "node_selector:", "  kind: regionaware", "  regions:"]
        # Made-up places a quarter of the globe apart: only "nearest is this node" matters.
        for i, name in enumerate(regions):
            lines += [f"    - name: {name}", "      lat: 0", f"      lon: {90 * i}"]
    return "\n".join(lines) + "\n"


def node_region(index: int) -> str:
    """The region of the stack's node `index` (0-based): local-1, local-2, ..."""
    return f"local-{index + 1}"


def node_id_from_log(log: Path) -> str | None:
    """The node id a livekit-server last logged on start ("starting LiveKit server" ... "nodeID")."""
    if not log.exists():
        return None
    found = None
    for line in log.read_text(errors="replace").splitlines():
        if "starting LiveKit server" in line and '"nodeID": "' in line:
            found = line.split('"nodeID": "', 1)[1].split('"', 1)[0]
    return found


def room_nodes(redis_address: str) -> dict[str, str]:
    """Room name -> the id of the node holding it, as LiveKit's router keeps it in Redis."""
    return _redis_hgetall(redis_address, "room_node_map")


def _redis_hgetall(address: str, key: str) -> dict[str, str]:
    """One HGETALL in Redis's wire protocol: all a status check needs, without a Redis client."""
    host, port = address.rsplit(":", 1)
    command = f"*2\r\n$7\r\nHGETALL\r\n${len(key.encode())}\r\n{key}\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(command)
        reply = sock.makefile("rb")
        header = reply.readline()
        if not header.startswith(b"*"):
            raise RuntimeError(f"Redis answered HGETALL {key} with {header!r}")
        values = []
        for _ in range(int(header[1:])):
            size = int(reply.readline()[1:])
            values.append(reply.read(size + 2)[:-2].decode())
    return dict(zip(values[::2], values[1::2], strict=True))
