"""A real call through the whole local stack: API, LiveKit, webhooks, worker, audio both ways."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from infra.local.stack import LocalStack, free_port
from tests.support.caller import Caller, speech, wait_until
from tests.support.config_files import config_with
from tests.support.fake_openai import ANSWER, GREETING, QUESTION, REALTIME, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, session_report, stack_with_fake_models

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    # One re-dispatch, so the second loss of the killed-worker test ends the session.
    run_dir = tmp_path_factory.mktemp("stack")
    config = config_with(run_dir / "voice.yaml", {"agent_watchdog": {"max_dispatches": 1}})
    with stack_with_fake_models(run_dir, fake_openai, config_uri=str(config)) as running:
        yield running


@asynccontextmanager
async def greeted_call(
    stack: LocalStack, api: httpx.AsyncClient, *logs: str
) -> AsyncIterator[tuple[str, Caller, float]]:
    """A new session's caller who has heard the agent's greeting: (session id, caller, seconds
    from joining to the greeting). The caller leaves at the end; a failed assertion carries the
    tail of the named logs."""
    joined_at = time.monotonic()
    resp = await api.post("/session", json={"agent_type": "single_agent", "initial_greeting": True})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    session_id = created["session_id"]
    caller = Caller()
    await caller.join(created["url"], created["token"])
    try:
        await poll_session(api, session_id, lambda s: s["agent_joined"], WAIT, "the agent")
        greeting_at = await caller.wait_for_voice(after=joined_at, timeout=WAIT)
        yield session_id, caller, greeting_at - joined_at
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, *logs)}") from exc
    finally:
        await caller.leave()


async def test_caller_hears_greeting_and_answer_and_session_ends_by_webhook(
    stack: LocalStack, api: httpx.AsyncClient, fake_openai: FakeOpenAIServer
) -> None:
    async with greeted_call(stack, api, "worker") as (session_id, caller, greeting_after):
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)

        spoke_at = await caller.say(speech(QUESTION))
        answer_at = await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
        print(
            f"\ngreeting heard {greeting_after:.2f} s after joining; "
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

    ended = await poll_session(
        api, session_id, lambda s: s["status"] == "ended", WAIT, "the session to end"
    )
    assert ended["ended_at"] is not None
    # Only webhook events give these reasons (the API says ended_by_api, the reaper its own).
    assert ended["end_reason"] in ("caller_left", "room_finished"), ended

    await wait_until(lambda: session_report(stack, session_id) is not None, WAIT, "the report")
    report = session_report(stack, session_id)
    assert report is not None
    turns = [(t["role"], t["text"].strip()) for t in report["transcript"]]
    assert turns == [("assistant", GREETING), ("user", QUESTION), ("assistant", ANSWER)], turns
    # Transcribed while spoken (stt.streaming, the default), over OpenAI's realtime protocol;
    # the transcriber ends speech after the worker's VAD silence (vad.min_silence_duration).
    realtime = [r.body for r in fake_openai.fake.of(REALTIME)]
    connects = [(r["intent"], r["model"]) for r in realtime if r["event"] == "connect"]
    assert connects and set(connects) == {("transcription", "gpt-4o-transcribe")}, connects
    updates = [r["session"]["audio"]["input"] for r in realtime if r["event"] == "session.update"]
    assert {u["turn_detection"]["silence_duration_ms"] for u in updates} == {300}, updates
    assert QUESTION in [r["text"] for r in realtime if r["event"] == "transcription"]
    assert fake_openai.fake.of("/v1/audio/transcriptions") == []


async def test_worker_killed_mid_call_is_redispatched_once_then_the_session_fails(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    """Never stuck active: a lost agent is replaced while `agent_watchdog.max_dispatches` (1
    here) allows, the next loss fails the session."""
    try:
        async with greeted_call(stack, api, "worker", "worker-b", "api") as (session_id, caller, _):
            # A second worker joins the fleet; the first, which holds the call, dies without
            # warning. LiveKit drops an agent that vanished without leaving when its peer
            # connection times out (about 20 s), then the webhook re-dispatches the job to the
            # remaining worker.
            stack.start_worker("worker-b", health_port=free_port())
            killed_at = time.monotonic()
            stack.stop_worker(signal.SIGKILL)
            await wait_until(
                lambda: len(caller.agents_left) >= 1, WAIT, "LiveKit to drop the agent"
            )
            print(f"\nagent dropped {time.monotonic() - killed_at:.2f} s after SIGKILL")
            await wait_until(lambda: len(caller.agents_joined) >= 2, WAIT, "a re-dispatched agent")
            print(f"new agent joined {time.monotonic() - killed_at:.2f} s after SIGKILL")
            status = (await api.get(f"/session/{session_id}")).json()["status"]
            assert status == "active"

            spoke_at = await caller.say(speech(QUESTION))
            await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
            second = caller.agents_joined[1]
            await wait_until(
                lambda: ANSWER in " ".join(caller.said_by(second)), WAIT, "the new agent's answer"
            )
            # A re-dispatched agent picks up the call; it does not greet the caller a second time.
            assert GREETING not in " ".join(caller.said_by(second))

            killed_at = time.monotonic()
            stack.stop_worker(signal.SIGKILL, name="worker-b")
            failed = await poll_session(
                api,
                session_id,
                lambda s: s["status"] != "active",
                WAIT,
                "the session to leave active",
            )
            print(f"session {failed['status']} {time.monotonic() - killed_at:.2f} s after SIGKILL")
            assert failed["status"] == "failed"
            assert failed["end_reason"] == "agent_lost"
    finally:
        if "worker" not in stack.procs:
            stack.start_worker()
