"""Privacy on a real call: the personal data the caller says (names included, by the LLM redactor)
is redacted in the stored transcript, so in the transcript API, the customer webhooks and the
post-call analysis's input; and nothing the caller said reaches any log line of any process
(API, worker and its job processes, LiveKit, the emulator, the watchdog, outbox and analysis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local.stack import LocalStack, free_port
from tests.support.caller import Caller, speech
from tests.support.fake_openai import ANALYSIS_SCHEMA, QUESTION, FakeOpenAI, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, stack_with_webhooks
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
PHONE = "+1 415 555 0132"
EMAIL = "dana.lee@example.com"
CARD = "4111 1111 1111 1111"
NAME = "Dana Lee"  # a name the fake redactor model knows (tests/support/fake_openai.NAMES)
SECRET = "whsec-privacy"
# What the (fake) transcriber hears, whatever the caller's audio says.
HEARD = f"This is {NAME}. My number is {PHONE}, mail {EMAIL}, card {CARD}. {QUESTION}"
RAW = (NAME, "Dana", PHONE, EMAIL, CARD, "4111")


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(free_port(), FakeOpenAI(transcript=HEARD)) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalStack]:
    run_dir: Path = tmp_path_factory.mktemp("stack")
    with stack_with_webhooks(
        run_dir,
        fake_openai,
        receiver.hook_url,
        SECRET,
        privacy={
            "redact": ["phone", "email", "card", "national_id", "name"],
            "name_redactor": {"enabled": True, "model": "redactor-1"},
        },
        analysis={
            "enabled": True,
            "model": "analyst-1",
            "base_url": fake_openai.base_url,
            "success_criteria": "The caller learned the opening hours.",
        },
    ) as running:
        yield running


async def test_a_callers_personal_data_is_redacted_everywhere_and_never_logged(
    stack: LocalStack,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
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
    for placeholder in ("[name]", "[phone]", "[email]", "[card]"):
        assert placeholder in said, said
    for raw in RAW:
        assert raw not in said, said
    assert QUESTION in said, "what is not personal data is kept"

    # The analysis ran on the redacted transcript: the analyst never saw the raw data.
    analysed = await poll_session(
        api, session_id, lambda s: s["analysis"] is not None, WAIT, "the analysis"
    )
    assert analysed["analysis"]["status"] == "ok", analysed["analysis"]
    assert "[name]" in analysed["analysis"]["summary"], analysed["analysis"]
    assert analysed["analysis"]["success"]["verdict"] is True
    asked = [
        r.body
        for r in fake_openai.fake.of("/v1/chat/completions")
        if (r.body.get("response_format") or {}).get("json_schema", {}).get("name")
        == ANALYSIS_SCHEMA
    ]
    assert len(asked) == 1 and asked[0]["model"] == "analyst-1"
    for raw in RAW:
        assert raw not in str(asked[0]["messages"]), raw

    # The customer's webhooks carry only the redacted transcript, and the analysis.
    hooks = receiver.receiver
    deadline = time.monotonic() + WAIT
    while {"session.ended", "session.analyzed"} - {e["type"] for e in hooks.events()}:
        assert time.monotonic() < deadline, [e["type"] for e in hooks.events()]
        await asyncio.sleep(0.5)
    delivered = str(hooks.events())
    assert "[name]" in delivered and "[phone]" in delivered
    for raw in RAW:
        assert raw not in delivered, raw
    [analyzed] = hooks.events("session.analyzed")
    assert analyzed["session"]["analysis"] == analysed["analysis"]

    # Every log of every process: nothing the caller said, redacted or not, in any line. The
    # job processes log through the worker's (their lines are there: the report's is one).
    logs = {p.name: p.read_text(errors="replace") for p in stack.opts.run_dir.glob("*.log")}
    expected = {"api.log", "worker.log", "livekit.log", "watchdog.log", "outbox.log"}
    assert expected | {"analysis.log", "aws.log"} <= set(logs), sorted(logs)
    assert "session report written" in logs["worker.log"], "the job process's lines are there"
    for name, text in logs.items():
        for words in (*RAW, QUESTION, "[name]"):
            assert words not in text, f"{name} logs what the caller said: {words!r}"
