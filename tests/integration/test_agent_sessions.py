"""Sessions and calls that pick an agent version, through the real Mangum handler."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
import pytest

from functions.settings import DEV_LIVEKIT_SECRET
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import Reply, invoke

BASE = "/voice/realtime"


def api(cp: ControlPlane, method: str, path: str, user: str = "alice", **kw: Any) -> Reply:
    return invoke(method, f"{BASE}{path}", headers=cp.headers(user), **kw)


def agent_with_versions(cp: ControlPlane, *configs: dict[str, Any], user: str = "alice") -> str:
    agent_id = api(cp, "POST", "/agents", user, json={"name": "front desk"}).body["agent_id"]
    for config in configs:
        r = api(cp, "POST", f"/agents/{agent_id}/versions", user, json={"config": config})
        assert r.status == 201, r.body
    return agent_id


def dispatch_of(created: Reply) -> dict[str, Any]:
    claims = jwt.decode(created.body["token"], DEV_LIVEKIT_SECRET, algorithms=["HS256"])
    return json.loads(claims["roomConfig"]["agents"][0]["metadata"])


def test_a_session_runs_the_named_version_and_shows_it(control_plane: ControlPlane) -> None:
    agent_id = agent_with_versions(
        control_plane,
        {"agent": {"type": "smart_router"}},
        {"agent": {"type": "single_agent", "initial_greeting": False}},
    )
    created = api(
        control_plane,
        "POST",
        "/session",
        json={"agent_id": agent_id, "agent_version": 2, "end_user_id": "customer-42"},
    )
    assert created.status == 201, created.body
    dispatch = dispatch_of(created)
    assert (dispatch["agent_id"], dispatch["agent_version"]) == (agent_id, 2)
    # The version's own defaults apply, as the config file's do for the default agent.
    assert (dispatch["agent_type"], dispatch["initial_greeting"]) == ("single_agent", False)
    shown = api(control_plane, "GET", f"/session/{created.body['session_id']}").body
    assert (shown["agent_id"], shown["agent_version"], shown["end_user_id"]) == (
        agent_id,
        2,
        "customer-42",
    )


def test_a_session_without_an_agent_is_served_by_the_config_file_agent_as_before(
    control_plane: ControlPlane,
) -> None:
    created = api(control_plane, "POST", "/session", json={})
    assert created.status == 201
    dispatch = dispatch_of(created)
    assert "agent_id" not in dispatch and "agent_version" not in dispatch
    shown = api(control_plane, "GET", f"/session/{created.body['session_id']}").body
    assert shown["agent_id"] is None and shown["agent_version"] is None


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"agent_version": 1}, "agent_version: name the agent too (agent_id)"),
        ({"agent_id": "agt_nope"}, "agent_id: no agent agt_nope"),
        ({"agent_version": 9}, "agent_version: agent"),
        ({"end_user_id": ""}, "end_user_id"),
    ],
)
def test_a_session_naming_a_missing_agent_or_version_is_422(
    control_plane: ControlPlane, body: dict[str, Any], names: str
) -> None:
    agent_id = agent_with_versions(control_plane, {})
    if "agent_version" in body and body["agent_version"] == 9:
        body = body | {"agent_id": agent_id}
    r = api(control_plane, "POST", "/session", json=body)
    assert r.status == 422, r.body
    assert names in r.body["message"], r.body["message"]


def test_another_accounts_agent_cannot_serve_a_session(control_plane: ControlPlane) -> None:
    agent_id = agent_with_versions(control_plane, {})
    r = api(control_plane, "POST", "/session", "bob", json={"agent_id": agent_id})
    assert r.status == 422
    assert f"agent_id: no agent {agent_id}" in r.body["message"]


def test_a_version_invalid_for_the_request_is_checked_against_the_versions_own_settings(
    control_plane: ControlPlane,
) -> None:
    agent_id = agent_with_versions(
        control_plane,
        {
            "voice_profiles": {"calm": {"voice_id": "sage"}},
            "agent": {"voice_profile": "calm", "allow_overrides": False},
        },
    )
    ok = api(
        control_plane, "POST", "/session", json={"agent_id": agent_id, "voice_profile": "calm"}
    )
    assert ok.status == 201, ok.body
    refused = api(
        control_plane, "POST", "/session", json={"agent_id": agent_id, "instructions": "Be brief."}
    )
    assert refused.status == 422
    assert "allow_overrides" in refused.body["message"]


def test_a_phone_call_records_the_version_its_number_lands_on(control_plane: ControlPlane) -> None:
    agent_id = agent_with_versions(control_plane, {}, {})
    split = {"traffic": [{"version": 1, "percent": 50}, {"version": 2, "percent": 50}]}
    api(control_plane, "PUT", f"/agents/{agent_id}/traffic", json=split | {"expected_revision": 1})
    to = "sip:bob@127.0.0.1:5999"
    expected = api(
        control_plane, "GET", f"/agents/{agent_id}/assignment", query=f"phone_number={to}"
    ).body["version"]
    # LiveKit is unreachable here: the call is not placed, and its session says what it ran.
    r = api(control_plane, "POST", "/call", json={"to": to, "agent_id": agent_id})
    assert r.status == 502, r.body
    (failed,) = api(control_plane, "GET", "/sessions").body["sessions"]
    assert (failed["agent_id"], failed["agent_version"]) == (agent_id, expected)
    pinned = api(
        control_plane, "POST", "/call", json={"to": to, "agent_id": agent_id, "agent_version": 9}
    )
    assert pinned.status == 422
    assert "agent_version" in pinned.body["message"]


@pytest.fixture
def roomy_config(control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The config file with room for many live sessions of one API user."""
    limits = {"limits": {"max_sessions_per_user": 200, "max_sessions_per_account": 200}}
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "voice.yaml", limits)))
    reset_control_plane()
    return control_plane


def test_a_90_10_split_over_1000_end_users_is_within_3_points_and_each_keeps_its_version(
    roomy_config: ControlPlane,
) -> None:
    cp = roomy_config
    agent_id = agent_with_versions(cp, {}, {"agent": {"instructions": "canary"}})
    split = {"traffic": [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}]}
    r = api(cp, "PUT", f"/agents/{agent_id}/traffic", json=split | {"expected_revision": 1})
    assert r.status == 200, r.body

    def assigned(end_user: str) -> int:
        query = f"end_user_id={end_user}"
        reply = api(cp, "GET", f"/agents/{agent_id}/assignment", query=query)
        assert reply.status == 200, reply.body
        return reply.body["version"]

    def created(end_user: str) -> int:
        reply = api(cp, "POST", "/session", json={"agent_id": agent_id, "end_user_id": end_user})
        assert reply.status == 201, reply.body
        version = dispatch_of(reply)["agent_version"]
        assert api(cp, "GET", f"/session/{reply.body['session_id']}").body["agent_version"] == (
            version
        )
        return version

    # Every create of a table write costs moto a copy of the whole table, so the thousand users
    # are counted through the assignment route (the rule the create applies) and a sample of
    # them creates sessions, twice each.
    first = {f"user-{i}": assigned(f"user-{i}") for i in range(1000)}
    share = Counter(first.values())[2] / len(first)
    assert abs(share - 0.10) <= 0.03, share
    sample = [u for u, v in first.items() if v == 2][:20] + [u for u, v in first.items() if v == 1][
        :30
    ]
    for _ in range(2):
        assert {u: created(u) for u in sample} == {u: first[u] for u in sample}
