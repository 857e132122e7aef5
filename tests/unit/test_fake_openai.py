"""The test model server: each latency knob delays only its own route, and realtime
transcription speaks OpenAI's protocol (server VAD, commit, transcript after the STT delay)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import numpy as np
import pytest

from infra.local.stack import free_port
from tests.support.fake_openai import (
    ANSWER,
    GREETING,
    QUESTION,
    REALTIME,
    FakeOpenAI,
    FakeOpenAIServer,
    Latency,
    answer_for,
    espeak_samples,
    speech_wav,
    tone_samples,
)

RATE = 24_000


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeOpenAIServer]:
    latency = getattr(request, "param", Latency())
    with FakeOpenAIServer(free_port(), FakeOpenAI(latency=latency)) as running:
        yield running


def _timed(client: httpx.Client, path: str, **kwargs: Any) -> tuple[float, str]:
    start = time.monotonic()
    resp = client.post(path, **kwargs)
    assert resp.status_code == 200, resp.text
    return time.monotonic() - start, resp.text


@pytest.mark.parametrize("server", [Latency(stt=0.2, llm_ttft=0.3, tts_ttfb=0.25)], indirect=True)
def test_each_knob_holds_back_its_own_route_by_at_least_its_delay(
    server: FakeOpenAIServer,
) -> None:
    chat = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hours?"}]}
    audio = {"file": ("a.wav", speech_wav("hello", 16_000), "audio/wav")}
    with httpx.Client(base_url=server.url, timeout=10) as client:
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


# -- realtime transcription --------------------------------------------------------------------


def _speech() -> np.ndarray:
    samples = espeak_samples(QUESTION, RATE)
    if samples is None:
        return tone_samples(QUESTION, RATE)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[loud[0] : loud[-1] + 1]  # espeak-ng's own leading and trailing quiet cut


def _session_update(silence_ms: int | None) -> dict[str, Any]:
    audio_in: dict[str, Any] = {
        "format": {"type": "audio/pcm", "rate": RATE},
        "transcription": {"model": "gpt-4o-transcribe"},
    }
    if silence_ms is not None:
        audio_in["turn_detection"] = {"type": "server_vad", "silence_duration_ms": silence_ms}
    return {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": audio_in}},
    }


async def _send_audio(ws: aiohttp.ClientWebSocketResponse, samples: np.ndarray) -> None:
    """In 50 ms appends, as the LiveKit plugin sends them (faster than real time)."""
    step = RATE // 20
    for start in range(0, samples.size, step):
        chunk = samples[start : start + step].astype(np.int16).tobytes()
        await ws.send_json(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
        )


async def _events_until_completed(
    ws: aiohttp.ClientWebSocketResponse,
) -> list[tuple[float, dict[str, Any]]]:
    events: list[tuple[float, dict[str, Any]]] = []
    async with asyncio.timeout(10):
        while True:
            event = await ws.receive_json()
            events.append((time.monotonic(), event))
            if event["type"].endswith("input_audio_transcription.completed"):
                return events


async def _realtime(server: FakeOpenAIServer) -> Any:
    url = server.base_url.replace("http", "ws", 1) + "/realtime?intent=transcription"
    http = aiohttp.ClientSession()
    return http, await http.ws_connect(url)


@pytest.mark.parametrize("server", [Latency(stt=0.2)], indirect=True)
async def test_realtime_server_vad_ends_speech_after_its_silence_and_transcribes_after_the_delay(
    server: FakeOpenAIServer,
) -> None:
    http, ws = await _realtime(server)
    try:
        await ws.send_json(_session_update(silence_ms=300))
        assert (await ws.receive_json())["type"] == "session.updated"
        speech = _speech()
        # 250 ms of quiet is not the end yet; 400 ms is.
        await _send_audio(ws, np.concatenate([speech, np.zeros(RATE // 4, np.int16), speech]))
        await _send_audio(ws, np.zeros(RATE * 4 // 10, np.int16))
        events = await _events_until_completed(ws)
    finally:
        await ws.close()
        await http.close()

    kinds = [e["type"] for _, e in events]
    assert kinds == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    started, stopped, completed = events[0][1], events[1][1], events[-1][1]
    assert completed["transcript"] == QUESTION
    assert started["item_id"] == stopped["item_id"] == completed["item_id"]
    spoken_ms = (2 * speech.size + RATE // 4) * 1000 / RATE
    assert stopped["audio_end_ms"] - started["audio_start_ms"] == pytest.approx(spoken_ms, abs=60)
    assert events[-1][0] - events[1][0] >= 0.2  # the transcript waits for the STT delay
    [item] = [r.body for r in server.fake.of(REALTIME) if r.body["event"] == "transcription"]
    assert (item["model"], item["text"]) == ("gpt-4o-transcribe", QUESTION)


async def test_realtime_without_server_vad_transcribes_on_commit_only(
    server: FakeOpenAIServer,
) -> None:
    http, ws = await _realtime(server)
    try:
        await ws.send_json(_session_update(silence_ms=None))
        await ws.receive_json()
        await _send_audio(ws, np.concatenate([_speech(), np.zeros(RATE, np.int16)]))
        await ws.send_json({"type": "ping"})  # answered with an error: a marker in the stream
        before_commit = [await ws.receive_json(), await ws.receive_json()]
        await ws.send_json({"type": "input_audio_buffer.commit"})
        events = await _events_until_completed(ws)
    finally:
        await ws.close()
        await http.close()

    # One second of quiet ended nothing: the speech stopped only on the commit.
    assert [e["type"] for e in before_commit] == ["input_audio_buffer.speech_started", "error"]
    assert "ping" in before_commit[1]["error"]["message"]
    assert [e["type"] for _, e in events][:2] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert events[-1][1]["transcript"] == QUESTION


@pytest.mark.parametrize("server", [Latency()], indirect=True)
def test_a_failing_model_server_answers_every_chat_with_a_500(server: FakeOpenAIServer) -> None:
    server.fake.fail_chat = True
    chat = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hours?"}]}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        resp = client.post("/v1/chat/completions", json=chat)
        speech = client.post("/v1/audio/speech", json={"input": "hi", "model": "m"})
    assert resp.status_code == 500
    assert resp.json()["error"]["type"] == "server_error"
    assert speech.status_code == 200
