"""Registers the worker again within a moment of LiveKit's return after LiveKit restarts.

livekit-agents 1.8.9 retries a lost worker connection after 0, 2, 4, 6 ... 10 s, and the delay is
not configurable: a LiveKit back after 2 s waited up to ~4 s more for its workers, and a caller
who joined in between had the join's agent dispatch dropped ("not dispatching agent job since no
worker is available") until the control plane's watchdog sent it again. Here each connection
attempt first waits until LiveKit answers HTTP (polling every `POLL_SECONDS`), so an attempt never
fails against a server that is still down, the library never backs off, and the worker registers
as soon as LiveKit is back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

import aiohttp

from worker.logs import logger

POLL_SECONDS = 0.25
# After this long the attempt goes ahead anyway and fails as the library expects: its retry
# limit (and the health check's 503 once it is spent) still apply to a LiveKit that stays away.
PATIENCE_SECONDS = 10.0


def http_url(ws_url: str) -> str:
    """LiveKit's HTTP root for its ws(s):// or http(s):// URL."""
    parsed = urlparse(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parsed.scheme, parsed.scheme)
    return f"{scheme}://{parsed.netloc}/"


async def reachable(http: aiohttp.ClientSession, url: str) -> bool:
    """Any HTTP answer counts: LiveKit is up and accepts connections."""
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
            await resp.read()
            return True
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


class _WaitingSession:
    """The library's HTTP session, whose `ws_connect` first waits until LiveKit answers."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def ws_connect(self, *args: Any, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        await self.until_reachable()
        return await self._session.ws_connect(*args, **kwargs)

    async def until_reachable(self) -> float:
        """Seconds waited (up to `PATIENCE_SECONDS`) until LiveKit answered."""
        started = time.monotonic()
        waited = 0.0
        while not await reachable(self._session, self._url):
            waited = time.monotonic() - started
            if waited >= PATIENCE_SECONDS:
                break
            await asyncio.sleep(POLL_SECONDS)
        if waited:
            logger.info("livekit reachable again: registering", waited_s=round(waited, 2))
        return waited


class FastReconnect:
    """On `worker_started`: the library's connection loop gets the waiting session."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def start(self, *_: Any) -> None:
        # livekit-agents 1.8.9 opens its HTTP session before it emits `worker_started` and its
        # connection task makes its first attempt after: every attempt goes through here.
        session = getattr(self._server, "_http_session", None)
        url = getattr(self._server, "_ws_url", None)
        if session is None or not url or isinstance(session, _WaitingSession):
            return
        self._server._http_session = _WaitingSession(session, http_url(url))
