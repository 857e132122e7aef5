"""The evaluation gate, through the real Mangum handler: with `evals.required`, traffic above the
canary share moves only to a version whose latest evaluation passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import Reply, invoke

BASE = "/voice/realtime"
RUN = {"suite": "default", "mode": "text", "threshold": 1.0, "scenarios": 4, "runs": 4}


def api(cp: ControlPlane, method: str, path: str, user: str = "alice", **kw: Any) -> Reply:
    return invoke(method, f"{BASE}{path}", headers=cp.headers(user), **kw)


def _required(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, on: bool) -> None:
    path = config_with(tmp_path / "voice.yaml", {"evals": {"required": on, "canary_percent": 10}})
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    reset_control_plane()


def _agent_with_two_versions(cp: ControlPlane) -> str:
    agent_id = api(cp, "POST", "/agents", json={"name": "front desk"}).body["agent_id"]
    for n in (1, 2):
        body = {"config": {"agent": {"instructions": f"You are version {n}."}}}
        assert api(cp, "POST", f"/agents/{agent_id}/versions", json=body).status == 201
    return agent_id


def _split(cp: ControlPlane, agent_id: str, canary: int) -> Reply:
    revision = api(cp, "GET", f"/agents/{agent_id}/traffic").body["revision"]
    body = {
        "traffic": [{"version": 1, "percent": 100 - canary}, {"version": 2, "percent": canary}],
        "expected_revision": revision,
    }
    return api(cp, "PUT", f"/agents/{agent_id}/traffic", json=body)


def test_traffic_above_the_canary_share_needs_a_passing_evaluation(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _required(control_plane, monkeypatch, tmp_path, True)
    agent_id = _agent_with_two_versions(control_plane)
    assert _split(control_plane, agent_id, 10).status == 200  # a canary needs no evaluation

    refused = _split(control_plane, agent_id, 50)
    assert refused.status == 409
    assert refused.body["error"] == "evaluation_required"
    assert "version 2 has not been evaluated" in refused.body["message"]
    assert f"python -m evals run SUITE --agent {agent_id} --version 2" in refused.body["message"]
    promote = api(control_plane, "POST", f"/agents/{agent_id}/promote", json={"version": 2})
    assert promote.status == 409 and promote.body["error"] == "evaluation_required"

    failing = {**RUN, "pass_rate": 0.75, "failed": ["a silent caller is prompted"]}
    stored = api(control_plane, "POST", f"/agents/{agent_id}/versions/2/evals", json=failing)
    assert stored.status == 201 and stored.body["passed"] is False
    refused = _split(control_plane, agent_id, 50)
    assert refused.status == 409
    assert (
        "failed its last evaluation (default, text: 75% passed, 100% needed)"
        in refused.body["message"]
    )

    passing = {**RUN, "pass_rate": 1.0}
    assert (
        api(control_plane, "POST", f"/agents/{agent_id}/versions/2/evals", json=passing).status
        == 201
    )
    shown = api(control_plane, "GET", f"/agents/{agent_id}/versions/2").body["latest_eval"]
    assert shown["passed"] is True and shown["pass_rate"] == 1.0
    assert _split(control_plane, agent_id, 50).status == 200
    assert (
        api(control_plane, "POST", f"/agents/{agent_id}/promote", json={"version": 2}).status == 200
    )
    # Going back is never held up: version 1 was never evaluated.
    assert api(control_plane, "POST", f"/agents/{agent_id}/rollback", json={}).status == 200


def test_without_evals_required_any_split_is_allowed(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _required(control_plane, monkeypatch, tmp_path, False)
    agent_id = _agent_with_two_versions(control_plane)
    assert _split(control_plane, agent_id, 50).status == 200


def test_a_stored_evaluation_is_validated_and_owned(
    control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _required(control_plane, monkeypatch, tmp_path, True)
    agent_id = _agent_with_two_versions(control_plane)
    bad = api(
        control_plane, "POST", f"/agents/{agent_id}/versions/1/evals", json={**RUN, "pass_rate": 2}
    )
    assert bad.status == 422 and "pass_rate" in bad.body["message"]
    missing = api(
        control_plane, "POST", f"/agents/{agent_id}/versions/9/evals", json={**RUN, "pass_rate": 1}
    )
    assert missing.status == 404
    other = api(
        control_plane,
        "POST",
        f"/agents/{agent_id}/versions/1/evals",
        "bob",
        json={**RUN, "pass_rate": 1},
    )
    assert other.status == 404
