"""The local LiveKit server: where its binary is, and its loopback config with the dev keys."""

from __future__ import annotations

import os
import shutil
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
) -> str:
    """A livekit-server config on loopback (the dev keys unless given), optionally sending webhooks."""
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
    return "\n".join(lines) + "\n"
