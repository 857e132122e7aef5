"""A real call through the whole local stack: API, LiveKit, webhooks, worker, audio both ways."""

from __future__ import annotations

import time

import httpx
import pytest

from infra.local.stack import LocalStack
from tests.e2e.conftest import log_tail, poll_session, session_report
from tests.support.caller import Caller, speech, wait_until
from tests.support.fake_openai import ANSWER, GREETING, QUESTION, FakeOpenAIServer

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0


async def start_call(api: httpx.AsyncClient) -> tuple[dict, Caller]:
    resp = await api.post("/session", json={"agent_type": "single_agent", "initial_greeting": True})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    caller = Caller()
    await caller.join(created["url"], created["token"])
    return created, caller


async def test_caller_hears_greeting_and_answer_and_session_ends_by_webhook(
    stack: LocalStack, api: httpx.AsyncClient, fake_openai: FakeOpenAIServer
) -> None:
    joined_at = time.monotonic()
    created, caller = await start_call(api)
    session_id = created["session_id"]
    try:
        await poll_session(api, session_id, lambda s: s["agent_joined"], WAIT, "the agent")
        greeting_at = await caller.wait_for_voice(after=joined_at, timeout=WAIT)
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)

        spoke_at = await caller.say(speech(QUESTION))
        answer_at = await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
        print(
            f"\ngreeting heard {greeting_at - joined_at:.2f} s after joining; "
            f"answer heard {answer_at - spoke_at:.2f} s after the caller stopped speaking"
        )
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)

        agent = caller.agents_joined[0]
        await wait_until(
            lambda: (
                ANSWER in " ".join(caller.said_by(agent))
                and QUESTION in " ".join(caller.said_by(caller.identity))
            ),
            WAIT,
            "both turns in the transcription stream",
        )
        assert GREETING in " ".join(caller.said_by(agent))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'worker')}") from exc
    finally:
        await caller.leave()

    ended = await poll_session(
        api, session_id, lambda s: s["status"] == "ended", WAIT, "the session to end"
    )
    assert ended["ended_at"] is not None

    await wait_until(lambda: session_report(stack, session_id) is not None, WAIT, "the report")
    report = session_report(stack, session_id)
    assert report is not None
    turns = [(t["role"], t["text"].strip()) for t in report["transcript"]]
    assert turns == [("assistant", GREETING), ("user", QUESTION), ("assistant", ANSWER)], turns
    transcribed = [r.body["text"] for r in fake_openai.fake.of("/v1/audio/transcriptions")]
    assert QUESTION in transcribed
