"""`stt.streaming: false` on the real local stack: each utterance is uploaded whole after the
caller stops (for servers without realtime transcription), and the answer follows from it.
The default, streaming, is what `test_call.py` runs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.local.stack import LocalStack
from tests.support.caller import Caller, speech, wait_until
from tests.support.config_files import config_with
from tests.support.fake_openai import ANSWER, QUESTION, REALTIME, FakeOpenAIServer
from tests.support.stack import API, log_tail, poll_session, session_report, stack_with_fake_models

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    run_dir = tmp_path_factory.mktemp("stack")
    config = config_with(run_dir / "voice.yaml", {}, openai={"stt": {"streaming": False}})
    with stack_with_fake_models(run_dir / "stack", fake_openai, config_uri=str(config)) as running:
        yield running


async def test_per_utterance_transcription_answers_the_caller_without_a_realtime_session(
    stack: LocalStack, fake_openai: FakeOpenAIServer
) -> None:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(base_url=stack.api_url + API, headers=headers) as api:
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
            await caller.wait_for_voice(after=0.0, timeout=WAIT)
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

    uploads = fake_openai.fake.of("/v1/audio/transcriptions")
    assert QUESTION in [r.body["text"] for r in uploads]
    assert fake_openai.fake.of(REALTIME) == []

    await wait_until(
        lambda: session_report(stack, created["session_id"]) is not None, WAIT, "the report"
    )
    report = session_report(stack, created["session_id"])
    assert report is not None
    turns = [(t["role"], t["text"].strip()) for t in report["transcript"]]
    assert ("user", QUESTION) in turns and ("assistant", ANSWER) in turns, turns
