"""The runner's side of the control plane's API: read a version, create a pinned session, store
the result with the version."""

from __future__ import annotations

from typing import Any

import httpx

from voice.agents import AgentSpec
from voice.config.schema import VoiceConfig

PREFIX = "/voice/realtime"


class ApiError(RuntimeError):
    """The API refused a request; the message carries its `{error, message}`."""


class ControlPlane:
    def __init__(self, url: str, api_key: str, timeout: float = 15.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/") + PREFIX, headers={"X-API-Key": api_key}, timeout=timeout
        )

    async def __aenter__(self) -> ControlPlane:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = await self._client.request(method, path, **kw)
        if resp.status_code >= 400:
            try:
                body = resp.json()
                why = f"{body.get('error')}: {body.get('message')}"
            except ValueError:
                why = resp.text[:300]
            raise ApiError(f"{method} {PREFIX}{path} answered {resp.status_code} ({why})")
        return dict(resp.json())

    async def version_config(self, agent_id: str, version: int, base: VoiceConfig) -> VoiceConfig:
        """The version's content laid over `base` (as the worker does). Secrets come back masked:
        an MCP server's headers, for instance; mock its tools in the scenario."""
        body = await self._call("GET", f"/agents/{agent_id}/versions/{version}")
        return AgentSpec.model_validate(body["config"]).applied_to(base)

    async def create_session(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/session", json=body)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/session/{session_id}")

    async def end_session(self, session_id: str) -> None:
        await self._call("DELETE", f"/session/{session_id}")

    async def record_eval(
        self, agent_id: str, version: int, summary: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._call(
            "POST", f"/agents/{agent_id}/versions/{version}/evals", json=summary
        )
