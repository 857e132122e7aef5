"""The control plane under test: its moto table and bucket names, its users, its cache reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.local.stack import HOST, free_port

TABLE = "voice-sessions-test"
REPORTS_BUCKET = "voice-reports-test"


def reset_control_plane() -> None:
    """Drops the per-process caches so the next request sees this test's environment."""
    from functions.wiring import forget_process_state

    forget_process_state()


@dataclass
class ControlPlane:
    table: str
    keys: dict[str, str]  # user -> API key
    dynamodb: Any
    reports_bucket: str

    def headers(self, user: str = "alice") -> dict[str, str]:
        return {"x-api-key": self.keys[user], "content-type": "application/json"}


def unreachable_livekit_url() -> str:
    # A loopback port nobody listens on: connections are refused at once.
    return f"ws://{HOST}:{free_port()}"
