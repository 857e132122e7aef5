"""A deterministic OpenAI-compatible server for end-to-end tests: transcription, chat, speech.

Realtime transcription (`stt.streaming`) is served over a WebSocket at `/v1/realtime`. Run it in a
thread (`FakeOpenAIServer`) or alone: `python -m tests.support.fake_openai --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import io
import json
import math
import re
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from infra.local.stack import HOST

QUESTION = "What are your opening hours?"
GREETING = "Hello, thanks for calling. How can I help you today?"
ANSWER = "We are open nine to five."
TTS_RATE = 24_000
# Int16 RMS above this counts as speech; espeak-ng speech sits in the thousands, silence at 0.
SPEECH_RMS = 200.0
REALTIME = "/v1/realtime"
REALTIME_RATE = 24_000  # the realtime API's PCM rate unless the session says otherwise


# Structured-output requests the server answers by their schema's name (voice.name_redaction,
# functions.sessions.analysis); any other chat request is answered as a conversation turn.
REDACTION_SCHEMA = "redacted_transcript"
ANALYSIS_SCHEMA = "call_analysis"
# livekit-agents' answering-machine detector asks for its verdict through this tool.
AMD_TOOL = "save_prediction"
MACHINE_WORDS = ("leave a message", "after the beep", "after the tone", "voicemail")


def amd_label(transcript: str) -> str:
    """The fake detector's verdict on a callee's greeting: a machine by its usual words."""
    text = transcript.lower()
    if "press" in text:
        return "machine-ivr"
    return "machine-vm" if any(w in text for w in MACHINE_WORDS) else "human"


# The people's names the fake name redactor knows (a real model finds any).
NAMES = ("Dana Lee", "Dana", "Lee")


def redacted_lines(lines: list[str], names: tuple[str, ...]) -> list[str]:
    """`lines` with each known name (longest first, whole words) replaced by [name]."""
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in ordered) + r")\b")
    return [pattern.sub("[name]", line) for line in lines] if names else list(lines)


def example_of(schema: dict[str, Any]) -> Any:
    """A value matching a (simple) JSON Schema: the first enum or const, else one per type."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {k: example_of(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example_of(schema.get("items") or {"type": "string"})] * max(
            1, int(schema.get("minItems", 1))
        )
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "unknown"


def analysis_of(messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    """What the fake analyst answers: the schema's fields by example, a summary quoting the
    caller's first line, and a positive verdict."""
    transcript = _text_of(messages[-1]) if messages else ""
    first = next(
        (ln[len("user: ") :] for ln in transcript.splitlines() if ln.startswith("user: ")), ""
    )
    answer = example_of(schema)
    if "summary" in answer:
        answer["summary"] = f"The caller said: {first}" if first else "The caller said nothing."
    if "success" in answer:
        answer["success"] = {"verdict": True, "reason": "The caller's question was answered."}
    return answer


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


# The agent's deterministic rules for evaluations (`evals`), used only when a request matches them.
ALWAYS_ANSWER = re.compile(r'Always answer: "([^"]+)"')
GOODBYE_WORDS = ("goodbye", "hang up")
CALLER_DONE = "That is all, thank you. Goodbye."


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]{5,}", text.lower())}


def tool_call_for(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[str, str] | None:
    """(tool, JSON arguments) when the caller's latest words ask for an offered tool: a
    `transfer_to_X` whose name or "Use for:" words they use, or `end_call` on a goodbye. Only
    right after the caller spoke, so a tool's result is answered in words."""
    if not messages or messages[-1].get("role") != "user":
        return None
    said = _text_of(messages[-1]).lower()
    for tool in tools:
        fn = tool.get("function") or {}
        name = str(fn.get("name", ""))
        if name.startswith("transfer_to_"):
            topic = str(fn.get("description", "")).partition("Use for:")[2]
            if name.removeprefix("transfer_to_") in said or _words(topic) & _words(said):
                return name, "{}"
        elif name == "end_call" and any(w in said for w in GOODBYE_WORDS):
            return name, "{}"
    return None


def caller_turn(messages: list[dict[str, Any]]) -> str:
    """The simulated caller (`evals.models.CALLER_HEAD`): its goal first, then a goodbye, then
    `[END]`."""
    from evals.models import END, GOAL

    system = _text_of(messages[0])
    goal = next((ln[len(GOAL) :] for ln in system.splitlines() if ln.startswith(GOAL)), "")
    spoken = sum(1 for m in messages if m.get("role") == "assistant")
    return [goal, CALLER_DONE][spoken] if spoken < 2 else END


def judge_verdict(prompt: str) -> str:
    """The judge (`evals.models.JUDGE_HEAD`): "pass" when every quoted phrase of the intent is in
    what the agent said, "fail" naming the first missing one, "unsure" without quoted phrases."""
    from evals.models import INTENT

    intent = next((ln[len(INTENT) :] for ln in prompt.splitlines() if ln.startswith(INTENT)), "")
    agent = " ".join(
        ln.partition(":")[2] for ln in prompt.splitlines() if ln.startswith("agent:")
    ).lower()
    phrases = re.findall(r'"([^"]+)"', intent)
    if not phrases:
        verdict = {"verdict": "unsure", "reason": "the test judge decides quoted phrases only"}
    else:
        missing = next((p for p in phrases if p.lower() not in agent), None)
        verdict = (
            {"verdict": "pass", "reason": f"the agent said {', '.join(phrases)}"}
            if missing is None
            else {"verdict": "fail", "reason": f"the agent never said {missing!r}"}
        )
    return json.dumps(verdict)


def reply_for(body: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
    """(text, tool call) for a chat request: the caller or judge of an evaluation, or the agent."""
    from evals.models import CALLER_HEAD, JUDGE_HEAD

    messages = body.get("messages", [])
    first = _text_of(messages[0]) if messages else ""
    if first.startswith(CALLER_HEAD):
        return caller_turn(messages), None
    if first.startswith(JUDGE_HEAD):
        return judge_verdict(first), None
    system = " ".join(_text_of(m) for m in messages if m.get("role") in ("system", "developer"))
    always = ALWAYS_ANSWER.search(system)
    if always and any(m.get("role") == "user" for m in messages):
        return always.group(1), None
    call = tool_call_for(messages, body.get("tools") or [])
    return ("", call) if call else (answer_for(messages), None)


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
        self,
        transcript: str = QUESTION,
        latency: Latency | None = None,
        fail_chat: bool = False,
        names: tuple[str, ...] = NAMES,
        bad_analyses: int = 0,
    ) -> None:
        self.transcript = transcript
        self.latency = latency or Latency()
        # A broken model server: every chat completion is a 500.
        self.fail_chat = fail_chat
        self.names = names
        # This many analysis requests (the first ones) get an answer that misses the schema.
        self.bad_analyses = bad_analyses
        self.requests: list[Recorded] = []
        self.tool_calls: list[str] = []  # the tools it told an agent to call, in order
        self.sockets: set[web.WebSocketResponse] = set()
        self.app = web.Application()
        self.app.on_shutdown.append(self._close_sockets)
        self.app.add_routes(
            [
                web.get("/v1/models", self.models),
                web.post("/v1/audio/transcriptions", self.transcribe),
                web.post("/v1/chat/completions", self.chat),
                web.post("/v1/audio/speech", self.speech),
                web.get(REALTIME, self.realtime),
            ]
        )

    async def _close_sockets(self, app: web.Application) -> None:
        """Open realtime sessions would otherwise hold the server's shutdown."""
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def of(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def models(self, request: web.Request) -> web.StreamResponse:
        ids = ["gpt-4o", "gpt-4o-transcribe", "gpt-4o-mini-tts"]
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": i, "object": "model", "owned_by": "fake"} for i in ids],
            }
        )

    async def transcribe(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        await asyncio.sleep(self.latency.stt)
        upload = form["file"]
        audio = upload.file.read() if isinstance(upload, web.FileField) else b""
        rms, seconds = wav_rms(audio)
        text = self.transcript if rms >= SPEECH_RMS else ""
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.requests.append(
            Recorded(
                request.path,
                {**fields, "rms": rms, "seconds": seconds, "text": text},
            )
        )
        return web.json_response({"text": text})

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's realtime transcription: audio in while the caller speaks, text at its end."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        query = dict(request.query)
        self.requests.append(Recorded(request.path, {"event": "connect", **query}))
        session = RealtimeTranscription(self, ws)
        self.sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await session.handle(json.loads(msg.data))
        finally:
            self.sockets.discard(ws)
            await session.close()
        return ws

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, body))
        if self.fail_chat:
            error = {"message": "the model server is failing", "type": "server_error"}
            return web.json_response({"error": error}, status=500)
        structured = self.structured(body)
        text, call = (structured, None) if structured is not None else reply_for(body)
        model = body.get("model", "gpt-4o")
        created = int(time.time())
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        if AMD_TOOL in tools and body.get("stream"):
            label = amd_label(_text_of(body.get("messages", [{}])[-1]))
            return await self._tool_call(
                request, body, (AMD_TOOL, json.dumps({"label": label})), chunk
            )
        await asyncio.sleep(self.latency.llm_ttft)
        if call is not None:
            return await self._tool_call(request, body, call, chunk)
        if not body.get("stream"):
            return web.json_response(
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
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(text.split(" ")):
            await resp.write(chunk({"content": word if i == 0 else " " + word}))
        await resp.write(chunk({}, "stop"))
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
            await resp.write(f"data: {json.dumps(payload)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _tool_call(
        self, request: web.Request, body: dict[str, Any], call: tuple[str, str], chunk: Any
    ) -> web.StreamResponse:
        name, arguments = call
        self.tool_calls.append(name)
        tool_call = {"id": f"call_{len(self.tool_calls)}", "type": "function"}
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**tool_call, "function": {"name": name, "arguments": arguments}}],
            }
            return web.json_response(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "gpt-4o"),
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        delta = {"index": 0, **tool_call, "function": {"name": name, "arguments": arguments}}
        await resp.write(chunk({"role": "assistant", "tool_calls": [delta]}))
        await resp.write(chunk({}, "tool_calls"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def structured(self, body: dict[str, Any]) -> str | None:
        """The JSON answer to a structured-output request the fake knows by its schema's name."""
        spec = (body.get("response_format") or {}).get("json_schema") or {}
        messages = body.get("messages", [])
        if spec.get("name") == REDACTION_SCHEMA:
            lines = json.loads(_text_of(messages[-1]))["lines"]
            return json.dumps({"lines": redacted_lines(lines, self.names)})
        if spec.get("name") == ANALYSIS_SCHEMA:
            if self.bad_analyses > 0:
                self.bad_analyses -= 1
                return json.dumps({"summary": 42, "note": "not what the schema asks for"})
            return json.dumps(analysis_of(messages, spec.get("schema") or {}))
        return None

    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, body))
        audio = await asyncio.to_thread(speech_wav, str(body.get("input", "")))
        await asyncio.sleep(self.latency.tts_ttfb)
        return web.Response(body=audio, content_type="audio/wav")


class RealtimeTranscription:
    """One realtime transcription connection.

    Like OpenAI's server VAD: speech starts at the first loud 10 ms window and stops after
    `silence_duration_ms` of quiet; the transcript of that stretch follows `Latency.stt` later
    (deltas, then `completed`). `input_audio_buffer.commit` ends a stretch at once (the models
    without server VAD).
    """

    def __init__(self, fake: FakeOpenAI, ws: web.WebSocketResponse) -> None:
        self.fake = fake
        self.ws = ws
        self.rate = REALTIME_RATE
        self.silence_ms: float | None = 500.0  # None: no server VAD, the client commits
        self.model = ""
        self.position_ms = 0.0  # audio received so far
        self.item: list[np.ndarray] = []  # the current speech stretch
        self.item_id = ""
        self.started_ms = 0.0
        self.quiet_ms = 0.0
        self.items = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            self.configure(event.get("session") or {})
            self.fake.requests.append(Recorded(REALTIME, {"event": "session.update", **event}))
            await self.ws.send_json({"type": "session.updated", "session": event.get("session")})
        elif kind == "input_audio_buffer.append":
            audio = np.frombuffer(base64.b64decode(event.get("audio", "")), dtype=np.int16)
            await self.push(audio)
        elif kind == "input_audio_buffer.commit":
            await self.commit()
        else:
            await self.ws.send_json(
                {"type": "error", "error": {"message": f"unsupported event {kind!r}"}}
            )

    def configure(self, session: dict[str, Any]) -> None:
        audio_in = (session.get("audio") or {}).get("input") or {}
        self.rate = int((audio_in.get("format") or {}).get("rate") or self.rate)
        self.model = str((audio_in.get("transcription") or {}).get("model") or self.model)
        detection = audio_in.get("turn_detection")
        self.silence_ms = (
            None if not detection else float(detection.get("silence_duration_ms", 500))
        )

    async def push(self, audio: np.ndarray) -> None:
        window = self.rate // 100
        for start in range(0, audio.size, window):
            chunk = audio[start : start + window]
            ms = chunk.size * 1000 / self.rate
            loud = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) >= SPEECH_RMS
            self.position_ms += ms
            if not self.item_id:
                if not loud:
                    continue
                self.items += 1
                self.item_id = f"item_{self.items}"
                self.started_ms, self.quiet_ms = self.position_ms - ms, 0.0
                await self.ws.send_json(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "item_id": self.item_id,
                        "audio_start_ms": int(self.started_ms),
                    }
                )
            self.item.append(chunk)
            self.quiet_ms = 0.0 if loud else self.quiet_ms + ms
            if self.silence_ms is not None and self.quiet_ms >= self.silence_ms:
                await self.commit()

    async def commit(self) -> None:
        if not self.item_id:
            return
        item_id, samples = self.item_id, np.concatenate(self.item or [np.zeros(0, np.int16)])
        end_ms = int(self.position_ms - self.quiet_ms)
        self.item, self.item_id = [], ""
        await self.ws.send_json(
            {
                "type": "input_audio_buffer.speech_stopped",
                "item_id": item_id,
                "audio_end_ms": end_ms,
            }
        )
        await self.ws.send_json({"type": "input_audio_buffer.committed", "item_id": item_id})
        task = asyncio.create_task(self.transcribe(item_id, samples))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def transcribe(self, item_id: str, samples: np.ndarray) -> None:
        await asyncio.sleep(self.fake.latency.stt)
        values = samples.astype(np.float64)
        rms = float(np.sqrt(np.mean(values**2))) if values.size else 0.0
        text = self.fake.transcript if rms >= SPEECH_RMS else ""
        self.fake.requests.append(
            Recorded(
                REALTIME,
                {
                    "event": "transcription",
                    "model": self.model,
                    "rms": rms,
                    "seconds": samples.size / self.rate,
                    "text": text,
                },
            )
        )
        prefix = "conversation.item.input_audio_transcription"
        with contextlib.suppress(ConnectionError, RuntimeError):
            if text:
                await self.ws.send_json(
                    {"type": f"{prefix}.delta", "item_id": item_id, "delta": text}
                )
            await self.ws.send_json(
                {
                    "type": f"{prefix}.completed",
                    "item_id": item_id,
                    "transcript": text,
                    "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": 5},
                }
            )

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class FakeOpenAIServer(threading.Thread):
    """`FakeOpenAI` on aiohttp in a daemon thread; `base_url` is what OPENAI_BASE_URL takes."""

    def __init__(self, port: int, fake: FakeOpenAI | None = None) -> None:
        super().__init__(daemon=True, name="fake-openai")
        self.fake = fake or FakeOpenAI()
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._halt: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._halt = asyncio.Event()
        runner = web.AppRunner(self.fake.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        await web.TCPSite(runner, HOST, self.port).start()
        self._ready.set()
        try:
            await self._halt.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"fake-openai did not start on port {self.port}: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._halt is not None:
            self._loop.call_soon_threadsafe(self._halt.set)
        self.join(timeout=10)


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
    web.run_app(
        fake.app, host=HOST, port=args.port, print=None, access_log=None, shutdown_timeout=2.0
    )


if __name__ == "__main__":
    main()
