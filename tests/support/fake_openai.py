"""A deterministic OpenAI-compatible server for end-to-end tests: transcription, chat, speech.

Run it in a thread (`FakeOpenAIServer`) or alone: `python -m tests.support.fake_openai --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import math
import re
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import ServerThread

QUESTION = "What are your opening hours?"
GREETING = "Hello, thanks for calling. How can I help you today?"
ANSWER = "We are open nine to five."
TTS_RATE = 24_000
# Int16 RMS above this counts as speech; espeak-ng speech sits in the thousands, silence at 0.
SPEECH_RMS = 200.0


@dataclass(frozen=True)
class Latency:
    """Provider delays to emulate, in seconds; all 0 (answer at once) by default."""

    stt: float = 0.0  # transcription request -> response
    llm_ttft: float = 0.0  # chat request -> first token
    tts_ttfb: float = 0.0  # speech request -> first byte

    @property
    def total(self) -> float:
        return self.stt + self.llm_ttft + self.tts_ttfb


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


# A prompt holding `Say exactly: "..."` gets those words back (an agent's own greeting).
SAY_EXACTLY = re.compile(r'Say exactly: "([^"]+)"')


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The greeting before the caller has said anything (the words the latest instructions ask
    for with `Say exactly: "..."`, else GREETING); afterwards an answer to the last question."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    if last_user is None:
        for m in reversed(messages):
            asked = SAY_EXACTLY.search(_text_of(m)) if m.get("role") != "assistant" else None
            if asked:
                return asked.group(1)
        return GREETING
    text = _text_of(last_user).lower()
    if "hour" in text or "open" in text:
        return ANSWER
    return f"You said: {_text_of(last_user).strip()}"


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))


def wav_rms(data: bytes) -> tuple[float, float]:
    """(RMS of the int16 samples, duration in seconds) of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as w:
        frames = w.readframes(w.getnframes())
        rate = w.getframerate()
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float64)
    if samples.size == 0:
        return 0.0, 0.0
    return float(np.sqrt(np.mean(samples**2))), samples.size / rate


def to_wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return buf.getvalue()


def resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or samples.size == 0:
        return samples
    n = round(samples.size * dst / src)
    x = np.linspace(0, samples.size - 1, n)
    return np.interp(x, np.arange(samples.size), samples.astype(np.float64))


def espeak_samples(text: str, rate: int, voice: str = "en-us") -> np.ndarray | None:
    """Speech for `text` as int16 mono at `rate`, or None when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([binary, "-v", voice, "-s", "165", "-w", str(out), text], check=True)
        with wave.open(str(out)) as w:
            src_rate = w.getframerate()
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return resample(raw, src_rate, rate).astype(np.int16)


def tone_samples(text: str, rate: int) -> np.ndarray:
    """A deterministic stand-in for speech: 60 ms of 440 Hz per character."""
    seconds = max(0.3, 0.06 * len(text))
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)


@functools.lru_cache(maxsize=64)
def speech_wav(text: str, rate: int = TTS_RATE) -> bytes:
    samples = espeak_samples(text, rate)
    return to_wav(samples if samples is not None else tone_samples(text, rate), rate)


class FakeOpenAI:
    """The routes, plus every request they received (for assertions)."""

    def __init__(
        self, transcript: str = QUESTION, latency: Latency | None = None, fail_chat: bool = False
    ) -> None:
        self.transcript = transcript
        self.latency = latency or Latency()
        # A broken model server: every chat completion is a 500.
        self.fail_chat = fail_chat
        self.requests: list[Recorded] = []
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/audio/transcriptions", self.transcribe, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/audio/speech", self.speech, methods=["POST"]),
            ]
        )

    def of(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def models(self, request: Request) -> Response:
        ids = ["gpt-4o", "gpt-4o-transcribe", "gpt-4o-mini-tts"]
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": i, "object": "model", "owned_by": "fake"} for i in ids],
            }
        )

    async def transcribe(self, request: Request) -> Response:
        form = await request.form()
        await asyncio.sleep(self.latency.stt)
        upload = form["file"]
        audio = await upload.read() if hasattr(upload, "read") else b""
        rms, seconds = wav_rms(audio)
        text = self.transcript if rms >= SPEECH_RMS else ""
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.requests.append(
            Recorded(
                request.url.path,
                {**fields, "rms": rms, "seconds": seconds, "text": text},
            )
        )
        return JSONResponse({"text": text})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(Recorded(request.url.path, body))
        if self.fail_chat:
            error = {"message": "the model server is failing", "type": "server_error"}
            return JSONResponse({"error": error}, status_code=500)
        text = answer_for(body.get("messages", []))
        model = body.get("model", "gpt-4o")
        created = int(time.time())
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n"

        async def events() -> Any:
            await asyncio.sleep(self.latency.llm_ttft)
            yield chunk({"role": "assistant", "content": ""})
            for i, word in enumerate(text.split(" ")):
                yield chunk({"content": word if i == 0 else " " + word})
                await asyncio.sleep(0)
            yield chunk({}, "stop")
            if usage:
                tokens = len(text.split())
                payload = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 10,
                        "completion_tokens": tokens,
                        "total_tokens": 10 + tokens,
                    },
                }
                yield f"data: {json.dumps(payload)}\n\n"
            yield "data: [DONE]\n\n"

        if not body.get("stream"):
            await asyncio.sleep(self.latency.llm_ttft)
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                }
            )
        return StreamingResponse(events(), media_type="text/event-stream")

    async def speech(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(Recorded(request.url.path, body))
        audio = await asyncio.to_thread(speech_wav, str(body.get("input", "")))
        await asyncio.sleep(self.latency.tts_ttfb)
        return Response(audio, media_type="audio/wav")


class FakeOpenAIServer(ServerThread):
    """`FakeOpenAI` under uvicorn in a daemon thread; `base_url` is what OPENAI_BASE_URL takes."""

    def __init__(self, port: int, fake: FakeOpenAI | None = None) -> None:
        self.fake = fake or FakeOpenAI()
        super().__init__(self.fake.app, port, name="fake-openai")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--transcript", default=QUESTION)
    parser.add_argument("--stt-ms", type=float, default=0.0, help="transcription latency")
    parser.add_argument("--llm-ttft-ms", type=float, default=0.0, help="LLM time to first token")
    parser.add_argument("--tts-ttfb-ms", type=float, default=0.0, help="TTS time to first byte")
    args = parser.parse_args()
    latency = Latency(args.stt_ms / 1000, args.llm_ttft_ms / 1000, args.tts_ttfb_ms / 1000)
    fake = FakeOpenAI(args.transcript, latency)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
