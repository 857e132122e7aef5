"""Privacy on a real call: the personal data the caller says is redacted in the stored transcript
(and so in the transcript API), and nothing the caller said reaches any log line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local.stack import LocalStack, free_port
from tests.support.caller import Caller, speech
from tests.support.config_files import config_with
from tests.support.fake_openai import QUESTION, FakeOpenAI, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, stack_with_fake_models

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
PHONE = "+1 415 555 0132"
EMAIL = "dana.lee@example.com"
CARD = "4111 1111 1111 1111"
# What the (fake) transcriber hears, whatever the caller's audio says.
HEARD = f"My number is {PHONE}, mail {EMAIL}, card {CARD}. {QUESTION}"


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(free_port(), FakeOpenAI(transcript=HEARD)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    run_dir: Path = tmp_path_factory.mktemp("stack")
    config = config_with(
        run_dir / "voice.yaml", {"privacy": {"redact": ["phone", "email", "card", "national_id"]}}
    )
    with stack_with_fake_models(run_dir, fake_openai, config_uri=str(config)) as running:
        yield running


async def test_a_callers_personal_data_is_redacted_and_never_logged(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    resp = await api.post("/session", json={"agent_type": "single_agent", "initial_greeting": True})
    assert resp.status_code == 201, resp.text
    session_id = resp.json()["session_id"]
    caller = Caller()
    joined_at = time.monotonic()
    await caller.join(resp.json()["url"], resp.json()["token"])
    try:
        await poll_session(api, session_id, lambda s: s["agent_joined"], WAIT, "the agent")
        await caller.wait_for_voice(after=joined_at, timeout=WAIT)  # the greeting
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
        spoke_at = await caller.say(speech(QUESTION))
        await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'worker')}") from exc
    finally:
        await caller.leave()

    await poll_session(api, session_id, lambda s: s["status"] == "ended", WAIT, "the end")

    # The worker writes its report as the call closes: the transcript is there a moment later.
    deadline = time.monotonic() + WAIT
    while (got := await api.get(f"/session/{session_id}/transcript")).status_code != 200:
        assert time.monotonic() < deadline, got.text
        await asyncio.sleep(0.5)
    caller_lines = [t["text"] for t in got.json()["transcript"] if t["role"] == "user"]
    assert caller_lines, got.json()
    said = " ".join(caller_lines)
    assert "[phone]" in said and "[email]" in said and "[card]" in said, said
    for raw in (PHONE, EMAIL, CARD, "4111"):
        assert raw not in said, said
    assert QUESTION in said, "what is not personal data is kept"

    # Every log of the stack: nothing the caller said, redacted or not, in any line.
    logs = {p.name: p.read_text(errors="replace") for p in stack.opts.run_dir.glob("*.log")}
    assert {"api.log", "worker.log", "livekit.log"} <= set(logs), sorted(logs)
    for name, text in logs.items():
        for words in (PHONE, EMAIL, CARD, QUESTION):
            assert words not in text, f"{name} logs what the caller said: {words!r}"
