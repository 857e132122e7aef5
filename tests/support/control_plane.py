"""The control plane under test: its moto table and bucket names, its users, its cache reset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.local.stack import HOST, free_port

TABLE = "voice-sessions-test"
REPORTS_BUCKET = "voice-reports-test"


def reset_control_plane() -> None:
    """Drops the per-process caches so the next request sees this test's environment."""
    from functions.settings import get_settings
    from functions.wiring import get_container
    from voice.config import reset_config_cache

    get_settings.cache_clear()
    get_container.cache_clear()
    reset_config_cache()


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
