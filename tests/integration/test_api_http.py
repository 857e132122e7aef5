"""The API over real HTTP (uvicorn), including 20 racing creates against a limit of 3."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from infra.local.stack import free_port
from tests.support.control_plane import ControlPlane
from tests.support.servers import ServerThread

BASE = "/voice/realtime"


def test_twenty_racing_creates_for_one_user_yield_exactly_the_limit(
    control_plane: ControlPlane, serialized_dynamodb: None
) -> None:
    from functions.api.app import create_app

    with ServerThread(create_app(), free_port()) as server:

        def create(_: int) -> httpx.Response:
            return httpx.post(
                f"{server.url}{BASE}/session", headers=control_plane.headers(), json={}, timeout=30
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(pool.map(create, range(20)))
        codes = sorted(r.status_code for r in replies)
        assert codes == [201] * 3 + [429] * 17
        for r in replies:
            if r.status_code == 429:
                assert "max_sessions_per_user = 3" in r.json()["message"]
        listed = httpx.get(
            f"{server.url}{BASE}/sessions", headers=control_plane.headers(), timeout=30
        ).json()
        assert len(listed["sessions"]) == 3


def test_session_lifecycle_over_http(control_plane: ControlPlane) -> None:
    from functions.api.app import create_app

    with ServerThread(create_app(), free_port()) as server, httpx.Client(base_url=server.url) as c:
        h = control_plane.headers()
        created = c.post(f"{BASE}/session", headers=h, json={"agent_type": "single_agent"})
        assert created.status_code == 201
        sid = created.json()["session_id"]
        assert c.get(f"{BASE}/session/{sid}", headers=h).json()["agent_type"] == "single_agent"
        ended = c.delete(f"{BASE}/session/{sid}", headers=h)
        assert ended.json()["status"] == "ended"
        assert c.delete(f"{BASE}/session/{sid}", headers=h).status_code == 200
        health = c.get(f"{BASE}/health").json()
        assert health["status"] == "degraded"
        assert health["active_sessions"] == 0
        docs = c.get(f"{BASE}/openapi.json").json()
        assert c.get(f"{BASE}/docs").status_code == 200
        assert c.get("/openapi.json").json() == docs
        assert f"{BASE}/session" in docs["paths"]
