"""The eval runner on the deterministic model server: the example suite in text mode, a scenario
that must fail, repeats, the judge, and the result stored with the version over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from evals.__main__ import FAILED, PASSED, REFUSED, main
from infra.local.stack import free_port
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.servers import ServerThread

SUITE = Path(__file__).resolve().parents[2] / "evals" / "suites" / "default"
BASE = "/voice/realtime"


@pytest.fixture(autouse=True)
def _models(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The agent, the simulated caller and the judge all talk to the deterministic server.
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")


def _results(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "results.json").read_text()))


def _scenario(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in results["scenarios"] if s["name"] == name)


def test_the_example_suite_passes_in_text_mode_on_the_config_file_agent(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    assert main(["run", str(SUITE), "--out", str(tmp_path)]) == PASSED
    results = _results(tmp_path)
    assert results["passed"] and results["pass_rate"] == 1.0
    assert {s["name"]: len(s["runs"]) for s in results["scenarios"]} == {
        "billing questions go to billing": 1,
        "the agent ends the call when asked": 1,
        "a caller who interrupts is heard": 1,
        "a silent caller is prompted": 1,
    }
    billing = _scenario(results, "billing questions go to billing")["runs"][0]
    kinds = [(e["kind"], e.get("name")) for e in billing["transcript"]]
    assert ("tool_call", "transfer_to_billing") in kinds
    assert ("handoff", "specialist_billing") in kinds
    # The simulated caller improvised its second turn (a goodbye) after the scripted line.
    said = [e["text"] for e in billing["transcript"] if e["kind"] == "caller"]
    assert said[1] == "That is all, thank you. Goodbye."
    assert "end_call" in fake_openai.fake.tool_calls
    report = (tmp_path / "report.md").read_text()
    assert "# Evaluation: default (text) — PASSED" in report
    assert "caller: I was charged twice" in report


def test_an_agent_whose_instructions_break_an_expectation_fails_the_suite(tmp_path: Path) -> None:
    stubborn = config_with(
        tmp_path / "voice.yaml",
        {"agent": {"instructions": 'Never transfer anyone. Always answer: "Please hold."'}},
    )
    out = tmp_path / "out"
    code = main(
        ["run", str(SUITE / "billing_handoff.yaml"), "--config", str(stubborn), "--out", str(out)]
    )
    assert code == FAILED
    results = _results(out)
    assert not results["passed"] and results["pass_rate"] == 0.0
    checks = {c["expectation"]: c for c in results["scenarios"][0]["runs"][0]["checks"]}
    assert checks["calls_tool: transfer_to_billing"]["verdict"] == "fail"
    assert "never called transfer_to_billing" in checks["calls_tool: transfer_to_billing"]["reason"]
    judged = checks[
        'judge: the agent takes up the "refund" request without promising a date for it'
    ]
    assert judged["verdict"] == "fail" and "'refund'" in judged["reason"]


def test_repeat_gives_each_scenario_a_pass_rate_and_an_undecided_judge_is_not_a_pass(
    tmp_path: Path,
) -> None:
    (tmp_path / "suite.yaml").write_text("name: judged\nthreshold: 0.5\n")
    (tmp_path / "hours.yaml").write_text(
        "name: hours\nlines: ['What are your opening hours?']\nmax_turns: 1\n"
        "expect: [{says: nine to five}]\n"
    )
    (tmp_path / "vague.yaml").write_text(
        "name: vague\nlines: ['What are your opening hours?']\nmax_turns: 1\n"
        "expect: [{judge: the agent is friendly}]\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(tmp_path), "--repeat", "3", "--out", str(out)]) == PASSED
    results = _results(out)
    assert results["pass_rate"] == 0.5 and results["repeat"] == 3
    hours, vague = _scenario(results, "hours"), _scenario(results, "vague")
    assert [r["verdict"] for r in hours["runs"]] == ["pass"] * 3
    assert [r["verdict"] for r in vague["runs"]] == ["unsure"] * 3
    assert "quoted phrases only" in vague["runs"][0]["checks"][0]["reason"]


def test_a_versioned_agent_is_evaluated_through_the_api_and_the_result_is_stored_with_it(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    from functions.api.app import create_app

    key = control_plane.keys["alice"]
    with (
        ServerThread(create_app(), free_port()) as server,
        httpx.Client(
            base_url=server.url + BASE, headers=control_plane.headers(), timeout=30
        ) as api,
    ):
        agent_id = api.post("/agents", json={"name": "front desk"}).json()["agent_id"]
        r = api.post(
            f"/agents/{agent_id}/versions", json={"config": {"agent": {"type": "smart_router"}}}
        )
        assert r.status_code == 201, r.text
        assert api.get(f"/agents/{agent_id}/versions/1").json()["latest_eval"] is None
        argv = ["run", str(SUITE), "--agent", agent_id, "--version", "1", "--api", server.url]
        assert main([*argv, "--api-key", key, "--out", str(tmp_path)]) == PASSED
        stored = api.get(f"/agents/{agent_id}/versions/1").json()["latest_eval"]
        assert stored["passed"] and stored["suite"] == "default" and stored["mode"] == "text"
        assert (stored["pass_rate"], stored["scenarios"], stored["runs"]) == (1.0, 4, 4)
        assert stored["ran_by"] == "alice"
        # A version that does not exist is refused before anything runs.
        missing = ["run", str(SUITE), "--agent", agent_id, "--version", "7", "--api", server.url]
        assert main([*missing, "--api-key", key, "--out", str(tmp_path / "x")]) == REFUSED
        assert (
            main(["run", str(SUITE), "--agent", agent_id, "--out", str(tmp_path / "y")]) == REFUSED
        )
