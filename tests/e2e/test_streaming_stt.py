"""`stt.streaming: true` on the real local stack: the caller's speech goes to the transcriber
while it is spoken (OpenAI's realtime transcription protocol), and the answer follows from it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.local.stack import LocalStack
from tests.support.caller import Caller, speech, wait_until
from tests.support.config_files import config_with
from tests.support.fake_openai import ANSWER, QUESTION, REALTIME, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, session_report, stack_with_fake_models

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
SILENCE = 0.3  # vad.min_silence_duration, which the transcriber's server VAD must use too


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    run_dir = tmp_path_factory.mktemp("stack")
    config = config_with(
        run_dir / "voice.yaml",
        {"vad": {"min_silence_duration": SILENCE}},
        openai={"stt": {"streaming": True}},
    )
    with stack_with_fake_models(run_dir / "stack", fake_openai, config_uri=str(config)) as running:
        yield running


async def test_streaming_transcription_answers_the_caller_without_a_whole_utterance_upload(
    stack: LocalStack, fake_openai: FakeOpenAIServer
) -> None:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(
        base_url=stack.api_url + "/voice/realtime", headers=headers
    ) as api:
        resp = await api.post(
            "/session", json={"agent_type": "single_agent", "initial_greeting": True}
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        caller = Caller()
        await caller.join(created["url"], created["token"])
        try:
            await poll_session(
                api, created["session_id"], lambda s: s["agent_joined"], WAIT, "agent"
            )
            greeting_at = await caller.wait_for_voice(after=0.0, timeout=WAIT)
            await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
            spoke_at = await caller.say(speech(QUESTION))
            answer_at = await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
            await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
            agent = caller.agents_joined[0]
            await wait_until(
                lambda: ANSWER in " ".join(caller.said_by(agent)), WAIT, "the answer's transcript"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_tail(stack, 'worker')}") from exc
        finally:
            await caller.leave()
    print(f"\nanswer heard {answer_at - spoke_at:.2f} s after the caller stopped speaking")
    assert greeting_at < spoke_at

    realtime = [r.body for r in fake_openai.fake.of(REALTIME)]
    [connect] = [r for r in realtime if r["event"] == "connect"]
    assert (connect["intent"], connect["model"]) == ("transcription", "gpt-4o-transcribe")
    updates = [r["session"]["audio"]["input"] for r in realtime if r["event"] == "session.update"]
    assert updates and all(
        u["turn_detection"]["silence_duration_ms"] == SILENCE * 1000 for u in updates
    ), updates
    # The question was transcribed from the streamed audio, and nothing was uploaded whole.
    assert QUESTION in [r["text"] for r in realtime if r["event"] == "transcription"]
    assert fake_openai.fake.of("/v1/audio/transcriptions") == []

    await wait_until(
        lambda: session_report(stack, created["session_id"]) is not None, WAIT, "the report"
    )
    report = session_report(stack, created["session_id"])
    assert report is not None
    turns = [(t["role"], t["text"].strip()) for t in report["transcript"]]
    assert ("user", QUESTION) in turns and ("assistant", ANSWER) in turns, turns
