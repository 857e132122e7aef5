"""One scenario in audio mode, end to end on the local stack: a session created through the API
with the version pinned, the simulated caller speaking (TTS) into the room and hearing the agent
(STT), the caller-felt figures measured and the result stored with the version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evals.__main__ import PASSED, main
from infra.local.stack import LocalStack
from tests.support.config_files import config_with
from tests.support.fake_openai import ANSWER, QUESTION, FakeOpenAIServer
from tests.support.stack import API, log_tail, stack_with_fake_models

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

SCENARIO = f"""
name: a caller who interrupts is heard
persona: {{behaviour: [interrupts]}}
lines: ["{QUESTION}", "Sorry, and on Sundays?"]
max_turns: 2
expect:
  - says: nine to five
  - judge: the agent gives its "nine to five" hours
"""


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    # One warm job process, given time to start: this tests the runner, not the worker's start
    # on a loaded host.
    run_dir = tmp_path_factory.mktemp("stack")
    worker = {"worker": {"num_idle_processes": 1, "initialize_process_timeout": 60.0}}
    config = config_with(run_dir / "voice.yaml", worker)
    with stack_with_fake_models(run_dir, fake_openai, config_uri=str(config)) as running:
        yield running


def test_an_audio_run_measures_what_the_caller_felt_and_stores_the_result(
    stack: LocalStack,
    fake_openai: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The runner's caller and judge use the same deterministic server as the worker.
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    key = stack.api_keys[0][0]
    with httpx.Client(base_url=stack.api_url + API, headers={"x-api-key": key}, timeout=10) as api:
        agent_id = api.post("/agents", json={"name": "front desk"}).json()["agent_id"]
        body = {"config": {"agent": {"type": "single_agent"}}}
        assert api.post(f"/agents/{agent_id}/versions", json=body).status_code == 201
        scenario = tmp_path / "interrupting.yaml"
        scenario.write_text(SCENARIO)
        out = tmp_path / "out"
        argv = ["run", str(scenario), "--mode", "audio", "--agent", agent_id, "--version", "1"]
        code = main([*argv, "--api", stack.api_url, "--api-key", key, "--out", str(out)])
        results = json.loads((out / "results.json").read_text())
        run = results["scenarios"][0]["runs"][0]
        assert code == PASSED, f"{(out / 'report.md').read_text()}\n{log_tail(stack, 'worker')}"
        stored = api.get(f"/agents/{agent_id}/versions/1").json()["latest_eval"]
    assert stored["passed"] and stored["mode"] == "audio"
    metrics = run["metrics"]
    # Both caller turns were answered, and the second cut into the agent's first answer.
    assert metrics["answered_turns"] == 2 and metrics["unanswered_turns"] == 0
    assert metrics["interruptions"] == 1
    assert metrics["latency_p50_ms"] is not None
    assert metrics["latency_p95_ms"] >= metrics["latency_p50_ms"]
    agent = [e for e in run["transcript"] if e["kind"] == "agent"]
    assert agent[-1]["text"] == ANSWER
    # The test STT hears every loud stretch as its one fixed question, so what the caller heard
    # of "We are open nine to five." is all wrong: a word error rate of 1 on those turns.
    assert agent[-1]["heard"] == QUESTION
    assert metrics["wer"] is not None and metrics["wer"] > 0.5
