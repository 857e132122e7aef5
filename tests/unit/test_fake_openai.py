"""The test model server's latency knobs: each delays only its own route, and 0 changes nothing."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from tests.support.fake_openai import ANSWER, GREETING, FakeOpenAI, Latency, answer_for, speech_wav


def _timed(client: TestClient, path: str, **kwargs: object) -> tuple[float, str]:
    start = time.monotonic()
    resp = client.post(path, **kwargs)  # type: ignore[arg-type]
    assert resp.status_code == 200
    return time.monotonic() - start, resp.text


def test_each_knob_holds_back_its_own_route_by_at_least_its_delay() -> None:
    fake = FakeOpenAI(latency=Latency(stt=0.2, llm_ttft=0.3, tts_ttfb=0.25))
    chat = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hours?"}]}
    audio = {"file": ("a.wav", speech_wav("hello", 16_000), "audio/wav")}
    with TestClient(fake.app) as client:
        stt, _ = _timed(client, "/v1/audio/transcriptions", files=audio, data={"model": "m"})
        llm, body = _timed(client, "/v1/chat/completions", json=chat)
        tts, _ = _timed(client, "/v1/audio/speech", json={"input": "hi", "model": "m"})
    # Lower bounds only: a slow machine makes them longer, never shorter.
    assert (stt >= 0.2, llm >= 0.3, tts >= 0.25) == (True, True, True)
    assert "open" in body and ANSWER.split()[0] in body


def test_the_knobs_default_to_no_delay() -> None:
    assert FakeOpenAI().latency == Latency(0.0, 0.0, 0.0)
    assert Latency(0.1, 0.2, 0.3).total == 0.1 + 0.2 + 0.3


def test_the_greeting_is_what_the_latest_instructions_ask_for_word_for_word() -> None:
    system = {"role": "system", "content": "You are version one."}
    asked = {"role": "system", "content": 'Greet them. Say exactly: "Welcome to version one."'}
    assert answer_for([system]) == GREETING
    assert answer_for([system, asked]) == "Welcome to version one."
    # Once the caller has spoken, the answer is to them.
    assert answer_for([asked, {"role": "user", "content": "opening hours?"}]) == ANSWER


def test_a_failing_model_server_answers_every_chat_with_a_500() -> None:
    chat = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hours?"}]}
    with TestClient(FakeOpenAI(fail_chat=True).app) as client:
        resp = client.post("/v1/chat/completions", json=chat)
        speech = client.post("/v1/audio/speech", json={"input": "hi", "model": "m"})
    assert resp.status_code == 500
    assert resp.json()["error"]["type"] == "server_error"
    assert speech.status_code == 200
