"""POST /call takes per-call instructions, greeting, variables and language exactly as
POST /session does: the same caps, the same `allow_overrides` switch, the same dispatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke

BASE = "/voice/realtime"
# Dialled straight (the local stack takes SIP URIs); LiveKit is unreachable in these tests, so a
# call that passes every check is placed and fails with 502, leaving its session behind.
TO = "sip:bob@127.0.0.1:5999"
CHOICES = {
    "instructions": "The callee is {{name}}; ask about order {{order}}.",
    "greeting": "Hi {{name}}, this is the bakery.",
    "variables": {"name": "Dana", "order": "A-17"},
    "language": "de",
}


def call(cp: ControlPlane, **body: object):
    return invoke("POST", f"{BASE}/call", headers=cp.headers(), json={"to": TO} | body)


def stored_item(cp: ControlPlane) -> dict:
    (listed,) = invoke("GET", f"{BASE}/sessions", headers=cp.headers()).body["sessions"]
    return cp.dynamodb.get_item(
        TableName=cp.table,
        Key={"pk": {"S": f"SESSION#{listed['session_id']}"}, "sk": {"S": "SESSION"}},
    )["Item"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instructions": "x" * 4001}, "instructions"),
        ({"instructions": ""}, "instructions"),
        ({"greeting": "x" * 501}, "greeting"),
        ({"variables": {"bad name": "x"}}, "variables.bad name.[key]"),
        ({"variables": {"name": "x" * 501}}, "variables.name"),
        ({"variables": {"name": {"nested": "json"}}}, "variables.name"),
        ({"variables": {f"v{i}": "x" for i in range(33)}}, "variables"),
        ({"language": "English please"}, "language"),
    ],
)
def test_a_call_with_bad_per_call_choices_is_refused_naming_the_field(
    control_plane: ControlPlane, body: dict, field: str
) -> None:
    r = call(control_plane, **body)
    assert r.status == 422, r.body
    assert r.body["error"] == "validation_error"
    assert r.body["message"].startswith(f"{field}:"), r.body


@pytest.mark.parametrize("field", sorted(CHOICES))
def test_a_call_with_choices_is_refused_when_the_config_turns_overrides_off(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    path = config_with(tmp_path / "voice.yaml", {"agent": {"allow_overrides": False}})
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()
    r = call(control_plane, **{field: CHOICES[field]})
    assert r.status == 422, r.body
    assert r.body["message"].startswith(f"{field}: per-call overrides are turned off")
    assert "allow_overrides = false" in r.body["message"]
    # Nothing was dialled or stored.
    assert invoke("GET", f"{BASE}/sessions", headers=control_plane.headers()).body["sessions"] == []


def test_a_calls_choices_reach_its_agent_as_a_web_sessions_do(
    control_plane: ControlPlane,
) -> None:
    r = call(control_plane, metadata={"crm_id": 42}, **CHOICES)
    assert r.status == 502, r.body  # placed; LiveKit is unreachable here
    item = stored_item(control_plane)
    # The stored choices are what every dispatch of this session (first and re-dispatch) carries.
    assert json.loads(item["overrides_json"]["S"]) == CHOICES
    assert json.loads(item["metadata_json"]["S"]) == {"crm_id": 42}
