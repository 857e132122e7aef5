"""The agents API through the real Mangum handler: versions, traffic, promote, rollback, accounts."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import Reply, invoke

AGENTS = "/voice/realtime/agents"


def call(cp: ControlPlane, method: str, path: str, user: str = "alice", **kw: Any) -> Reply:
    headers = cp.headers(user) | kw.pop("headers", {})
    return invoke(method, f"{AGENTS}{path}", headers=headers, **kw)


def new_agent(cp: ControlPlane, user: str = "alice", name: str = "support line") -> str:
    r = call(cp, "POST", "", user, json={"name": name})
    assert r.status == 201, r.body
    return r.body["agent_id"]


def publish(cp: ControlPlane, agent_id: str, instructions: str, user: str = "alice") -> Reply:
    body = {"config": {"agent": {"instructions": instructions}}, "note": instructions}
    return call(cp, "POST", f"/{agent_id}/versions", user, json=body)


def agent_with_versions(cp: ControlPlane, count: int) -> str:
    agent_id = new_agent(cp)
    for n in range(1, count + 1):
        r = publish(cp, agent_id, f"You are version {n}.")
        assert r.status == 201, r.body
    return agent_id


def put_traffic(cp: ControlPlane, agent_id: str, split: list[tuple[int, int]], **kw: Any) -> Reply:
    body: dict[str, Any] = {"traffic": [{"version": v, "percent": p} for v, p in split]}
    body |= kw.pop("json", {})
    return call(cp, "PUT", f"/{agent_id}/traffic", json=body, **kw)


def test_an_agent_is_created_listed_and_read_by_its_account(control_plane: ControlPlane) -> None:
    agent_id = new_agent(control_plane, name="billing bot")
    listed = call(control_plane, "GET", "").body["agents"]
    assert [(a["agent_id"], a["name"], a["latest_version"]) for a in listed] == [
        (agent_id, "billing bot", 0)
    ]
    got = call(control_plane, "GET", f"/{agent_id}")
    assert got.status == 200
    assert got.body["created_by"] == "alice"


def test_one_account_cannot_see_or_change_another_accounts_agent(
    control_plane: ControlPlane,
) -> None:
    agent_id = agent_with_versions(control_plane, 2)
    assert call(control_plane, "GET", "", "bob").body["agents"] == []
    for method, path, body in [
        ("GET", f"/{agent_id}", None),
        ("GET", f"/{agent_id}/versions", None),
        ("GET", f"/{agent_id}/versions/1", None),
        ("GET", f"/{agent_id}/traffic", None),
        ("GET", f"/{agent_id}/traffic/history", None),
        ("POST", f"/{agent_id}/versions", {"config": {}}),
        ("PUT", f"/{agent_id}/traffic", {"traffic": [{"version": 2, "percent": 100}]}),
        ("POST", f"/{agent_id}/promote", {"version": 2}),
        ("POST", f"/{agent_id}/rollback", {}),
    ]:
        r = call(control_plane, method, path, "bob", json=body, headers={"If-Match": '"1"'})
        assert r.status == 404, (method, path, r.body)
        assert r.body["error"] == "not_found"
    assert call(control_plane, "GET", f"/{agent_id}/traffic").body["revision"] == 1


def test_a_version_holds_the_whole_behaviour_with_who_made_it_and_the_note(
    control_plane: ControlPlane,
) -> None:
    agent_id = new_agent(control_plane)
    body = {
        "config": {
            "agent": {"type": "single_agent", "instructions": "Talk like a pirate."},
            "providers": {"openai": {"llm": {"model": "gpt-4o-mini", "temperature": 0.2}}},
            "turn_detection": {"min_endpointing_delay": 0.3},
        },
        "note": "pirate voice",
    }
    r = call(control_plane, "POST", f"/{agent_id}/versions", json=body)
    assert r.status == 201, r.body
    assert (r.body["version"], r.body["created_by"], r.body["note"]) == (1, "alice", "pirate voice")
    got = call(control_plane, "GET", f"/{agent_id}/versions/1").body
    config = got["config"]
    assert config["agent"]["type"] == "single_agent"
    assert config["agent"]["instructions"] == "Talk like a pirate."
    assert config["providers"]["openai"]["llm"] == {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "base_url": None,
    }
    # What the version did not set comes from the deployment's config file, and is stored.
    assert config["providers"]["openai"]["stt"]["model"] == "gpt-4o-transcribe"
    assert config["turn_detection"]["min_endpointing_delay"] == 0.3
    assert config["turn_detection"]["max_endpointing_delay"] == 3.0
    assert {"default", "professional"} <= set(config["voice_profiles"])
    assert call(control_plane, "GET", f"/{agent_id}/versions/2").status == 404
    # The first version takes all traffic.
    traffic = call(control_plane, "GET", f"/{agent_id}/traffic")
    assert traffic.body["traffic"] == [{"version": 1, "percent": 100}]
    assert traffic.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"agent": {"type": "triage"}}, "config.agent.type: must be one of"),
        ({"agent": {"instrucions": "hi"}}, "config.agent.instrucions: is not a known key"),
        ({"personality": {}}, "config.personality: is not a section a version holds"),
        ({"vad": {"threshold": 2}}, "config.vad.threshold: must be < 1"),
        (
            {"turn_detection": {"min_endpointing_delay": 2.0, "max_endpointing_delay": 1.0}},
            "config.turn_detection: max_endpointing_delay must be >= min_endpointing_delay",
        ),
        (
            {"agent": {"voice_profile": "robot"}},
            "config.agent.voice_profile: 'robot' is not a configured profile",
        ),
        (
            {"agent": {"tools": ["crm"]}},
            "config.agent.tools.0: 'crm' is not a configured MCP server",
        ),
        (
            {"providers": {"openai": {"tts": {"speed": 9}}}},
            "config.providers.openai.tts.speed: must be <= 4",
        ),
    ],
)
def test_an_invalid_version_is_422_naming_the_field(
    control_plane: ControlPlane, config: dict[str, Any], names: str
) -> None:
    agent_id = new_agent(control_plane)
    r = call(control_plane, "POST", f"/{agent_id}/versions", json={"config": config})
    assert r.status == 422, r.body
    assert r.body["error"] == "validation_error"
    assert names in r.body["message"], r.body["message"]
    assert call(control_plane, "GET", f"/{agent_id}").body["latest_version"] == 0


def test_ten_racing_publishes_are_numbered_1_to_10_without_gap_or_duplicate(
    control_plane: ControlPlane, serialized_dynamodb: None
) -> None:
    agent_id = new_agent(control_plane)

    def racer(n: int) -> Reply:
        # Each thread is its own Lambda invocation: Mangum runs the app on the thread's loop.
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            return publish(control_plane, agent_id, f"racer {n}")
        finally:
            asyncio.get_event_loop().close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(racer, range(10)))
    assert [r.status for r in replies] == [201] * 10, [r.body for r in replies]
    assert sorted(r.body["version"] for r in replies) == list(range(1, 11))
    stored = call(control_plane, "GET", f"/{agent_id}/versions").body["versions"]
    assert [v["version"] for v in stored] == list(range(1, 11))
    # Each number holds the content its own publish sent.
    by_number = {r.body["version"]: r.body["note"] for r in replies}
    assert {v["version"]: v["note"] for v in stored} == by_number
    assert call(control_plane, "GET", f"/{agent_id}").body["latest_version"] == 10


@pytest.mark.parametrize(
    ("split", "names"),
    [
        ([(1, 50), (2, 40)], "the percents total 90; they must total 100"),
        ([(1, 50), (2, 60)], "the percents total 110"),
        ([(1, 20), (2, 20), (3, 20), (4, 20), (5, 10), (6, 10)], "at most 5"),
        ([(1, 90), (7, 10)], "traffic.1.version: version 7 does not exist"),
        ([(1, 50), (1, 50)], "traffic.1.version: version 1 is listed twice"),
        ([(1, 0), (2, 100)], "traffic.0.percent"),
    ],
)
def test_an_invalid_split_is_422_naming_what_to_fix(
    control_plane: ControlPlane, split: list[tuple[int, int]], names: str
) -> None:
    agent_id = agent_with_versions(control_plane, 6)
    r = put_traffic(control_plane, agent_id, split, headers={"If-Match": '"1"'})
    assert r.status == 422, r.body
    assert names in r.body["message"], r.body["message"]
    assert call(control_plane, "GET", f"/{agent_id}/traffic").body["revision"] == 1


def test_a_traffic_write_needs_the_revision_it_replaces_and_a_stale_one_is_409(
    control_plane: ControlPlane,
) -> None:
    agent_id = agent_with_versions(control_plane, 2)
    missing = put_traffic(control_plane, agent_id, [(1, 90), (2, 10)])
    assert missing.status == 428
    assert "If-Match" in missing.body["message"]
    first = put_traffic(control_plane, agent_id, [(1, 90), (2, 10)], headers={"If-Match": '"1"'})
    assert first.status == 200, first.body
    assert first.headers["etag"] == '"2"'
    # A second writer that read revision 1 loses, by If-Match or by expected_revision.
    stale = put_traffic(control_plane, agent_id, [(2, 100)], headers={"If-Match": '"1"'})
    assert (stale.status, stale.body["error"]) == (409, "stale_revision")
    stale = put_traffic(control_plane, agent_id, [(2, 100)], json={"expected_revision": 1})
    assert stale.status == 409
    assert call(control_plane, "GET", f"/{agent_id}/traffic").body["traffic"] == [
        {"version": 1, "percent": 90},
        {"version": 2, "percent": 10},
    ]
    bad_tag = put_traffic(control_plane, agent_id, [(2, 100)], headers={"If-Match": "*"})
    assert bad_tag.status == 422
    assert bad_tag.body["message"].startswith("If-Match:")


def test_promote_sends_everything_to_one_version_and_rollback_restores_the_split(
    control_plane: ControlPlane,
) -> None:
    agent_id = agent_with_versions(control_plane, 3)
    split = put_traffic(control_plane, agent_id, [(1, 80), (2, 20)], headers={"If-Match": '"1"'})
    assert split.status == 200
    promoted = call(control_plane, "POST", f"/{agent_id}/promote", json={"version": 3})
    assert promoted.status == 200, promoted.body
    assert (promoted.body["action"], promoted.body["revision"]) == ("promote", 3)
    assert promoted.body["traffic"] == [{"version": 3, "percent": 100}]
    back = call(
        control_plane, "POST", f"/{agent_id}/rollback", json={"reason": "callers complained"}
    )
    assert back.status == 200, back.body
    assert back.body["traffic"] == [{"version": 1, "percent": 80}, {"version": 2, "percent": 20}]
    assert (back.body["action"], back.body["actor"], back.body["reason"]) == (
        "rollback",
        "alice",
        "callers complained",
    )
    # A second rollback keeps walking back, to the first version's allocation, then stops.
    again = call(control_plane, "POST", f"/{agent_id}/rollback")
    assert again.body["traffic"] == [{"version": 1, "percent": 100}]
    last = call(control_plane, "POST", f"/{agent_id}/rollback")
    assert (last.status, last.body["error"]) == (409, "nothing_to_roll_back")
    history = call(control_plane, "GET", f"/{agent_id}/traffic/history").body["allocations"]
    assert [(h["revision"], h["action"]) for h in history] == [
        (1, "publish"),
        (2, "set"),
        (3, "promote"),
        (4, "rollback"),
        (5, "rollback"),
    ]
    assert all(h["actor"] == "alice" and h["at"] for h in history)


def test_a_stale_promote_or_rollback_is_409(control_plane: ControlPlane) -> None:
    agent_id = agent_with_versions(control_plane, 2)
    ok = call(control_plane, "POST", f"/{agent_id}/promote", json={"version": 2})
    assert ok.status == 200
    stale = call(
        control_plane, "POST", f"/{agent_id}/promote", json={"version": 1, "expected_revision": 1}
    )
    assert stale.status == 409
    stale = call(control_plane, "POST", f"/{agent_id}/rollback", headers={"If-Match": '"1"'})
    assert stale.status == 409
    missing = call(control_plane, "POST", f"/{agent_id}/promote", json={"version": 9})
    assert missing.status == 422
    assert "version 9 does not exist" in missing.body["message"]
