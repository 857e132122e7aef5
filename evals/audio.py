"""Audio mode: a real session created through the API with the version pinned; the simulated
caller joins its LiveKit room, speaks through TTS and hears the agent through STT, and measures
what a caller feels (answer latency, interruptions, unanswered turns, being talked over, WER)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import time
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc
from livekit.agents.types import (
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    ATTRIBUTE_TRANSCRIPTION_TRACK_ID,
)
from openai import AsyncOpenAI

from evals.control_plane import ControlPlane
from evals.models import SimulatedCaller
from evals.results import Conversation, Event
from evals.scenario import Scenario

if TYPE_CHECKING:
    from evals.runner import Target

RATE = 48_000
FRAME = RATE // 100  # 10 ms
VOICE_RMS = 300.0  # int16 RMS above this is someone speaking
TRANSCRIPTION_TOPIC = "lk.transcription"
BACKGROUND_TRACK = "background_audio"  # the thinking sound, not the agent's voice
CALLER_VOICE = "alloy"
AGENT_JOIN_TIMEOUT = 60.0  # a busy host may take long to start a job process
QUIET = 1.2  # seconds of agent silence that end its turn
TURN_LIMIT = 45.0  # the longest an agent turn is listened to
INTERRUPT_AFTER = 0.5  # an interrupting caller cuts in this long after the agent starts
YIELD_WITHIN = 1.5  # an interrupted agent that stops within this long has heard the caller
GAP = 0.3  # this long without the agent's voice is a pause
SETTLE = 3.0  # how long the last transcript segments may take to close after the last turn


def _pcm(wav_bytes: bytes) -> np.ndarray:
    """Mono int16 at 48 kHz from a 16-bit WAV, its trailing silence trimmed (so the end of
    speech is when the last frame leaves)."""
    with wave.open(io.BytesIO(wav_bytes)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != RATE and data.size:
        n = round(data.size * RATE / rate)
        data = np.interp(np.linspace(0, data.size - 1, n), np.arange(data.size), data)
        data = data.astype(np.int16)
    loud = np.flatnonzero(np.abs(data.astype(np.int32)) > VOICE_RMS)
    return data[: loud[-1] + 1] if loud.size else data


def _wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype(np.int16).tobytes())
    return buf.getvalue()


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """(edits, reference words): the word-level Levenshtein distance, for a word error rate."""
    ref = [w.strip(".,!?;:").lower() for w in reference.split() if w.strip(".,!?;:")]
    hyp = [w.strip(".,!?;:").lower() for w in heard.split() if w.strip(".,!?;:")]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class RoomCaller:
    """The caller's side of the room: a live microphone, the agent's voice frame by frame, the
    agent's own transcript."""

    room: rtc.Room = field(default_factory=rtc.Room)
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    # segment id -> [when it opened (monotonic), its text]
    segments: dict[str, list[Any]] = field(default_factory=dict)
    reading: set[asyncio.Task[None]] = field(default_factory=set)
    agent_left: bool = False
    agent_here: asyncio.Event = field(default_factory=asyncio.Event)
    speaking_since: float | None = None
    _queue: list[np.ndarray] = field(default_factory=list)
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def join(self, url: str, token: str) -> None:
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_joined)
        self.room.on("participant_disconnected", self._on_left)
        self.room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_text)
        await self.room.connect(url, token)
        for p in self.room.remote_participants.values():
            self._on_joined(p)
        source = rtc.AudioSource(RATE, 1, queue_size_ms=10)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._microphone(source)))

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.room.disconnect()

    async def say(self, samples: np.ndarray) -> tuple[float, float]:
        """Speaks in real time; (start, end) in monotonic seconds."""
        self._done.clear()
        self._queue.append(samples)
        await self._done.wait()
        assert self.speaking_since is not None
        start, self.speaking_since = self.speaking_since, None
        return start, time.monotonic()

    async def _microphone(self, source: rtc.AudioSource) -> None:
        silence = np.zeros(FRAME, dtype=np.int16)
        current, pos = np.zeros(0, dtype=np.int16), 0
        next_at = time.monotonic()
        while True:
            if pos >= current.size and self._queue:
                current, pos = self._queue.pop(0), 0
                self.speaking_since = time.monotonic()
            chunk = silence
            if pos < current.size:
                chunk = np.pad(current[pos : pos + FRAME], (0, max(0, FRAME - current[pos:].size)))
                pos += FRAME
                if pos >= current.size:
                    self._done.set()
            await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))
            next_at += 0.01
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # -- the agent's voice ----------------------------------------------------------------------

    def voice(self, after: float, before: float = math.inf) -> list[float]:
        return [t for t, s in self.frames if after < t < before and _rms(s) >= VOICE_RMS]

    def went_quiet(self, start: float, within: float) -> bool:
        """Whether the agent fell silent for GAP at some point in the `within` after `start`."""
        last = start
        for t in self.voice(start, start + within + GAP):
            if t - last >= GAP and last <= start + within:
                return True
            last = t
        return last <= start + within

    def speaking_at(self, at: float) -> bool:
        return bool(self.voice(at - 0.2, at))

    async def first_voice(self, after: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.voice(after)
            if found:
                return found[0]
            if self.agent_left:
                return None
            await asyncio.sleep(0.05)
        return None

    async def quiet(self, since: float) -> float:
        """Waits until the agent has been silent for QUIET; returns when its voice ended."""
        deadline = time.monotonic() + TURN_LIMIT
        while time.monotonic() < deadline and not self.agent_left:
            last = max(self.voice(since), default=since)
            if time.monotonic() - last >= QUIET:
                return last
            await asyncio.sleep(0.05)
        return max(self.voice(since), default=since)

    def audio(self, start: float, end: float) -> np.ndarray:
        chunks = [s for t, s in self.frames if start - 0.05 <= t <= end + 0.05]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def _on_joined(self, p: rtc.RemoteParticipant) -> None:
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_here.set()

    def _on_left(self, p: rtc.RemoteParticipant) -> None:
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_left = True

    def _on_track(
        self, track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        if (
            track.kind == rtc.TrackKind.KIND_AUDIO
            and p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            and pub.name != BACKGROUND_TRACK
        ):
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        try:
            async for ev in stream:
                samples = np.frombuffer(ev.frame.data, dtype=np.int16).copy()
                self.frames.append((time.monotonic(), samples))
        finally:
            await stream.aclose()

    def _on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        attributes = dict(reader.info.attributes or {})
        mine = set(self.room.local_participant.track_publications)
        if attributes.get(ATTRIBUTE_TRANSCRIPTION_TRACK_ID) in mine:
            return  # the agent's transcript of the caller, not what the agent said

        # A segment may come more than once (interim, then final): it opened with the first,
        # the last text stands.
        segment = attributes.get(ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID) or reader.info.stream_id
        opened = self.segments.setdefault(segment, [time.monotonic(), ""])[0]

        async def read() -> None:
            text = (await reader.read_all()).strip()
            if text:
                self.segments[segment] = [opened, text]

        task = asyncio.create_task(read())
        self.reading.add(task)
        task.add_done_callback(self.reading.discard)
        self._tasks.append(task)

    def said(self, after: float, until: float) -> str:
        """What the agent says it said in the transcript segments it began in (after, until]."""
        return " ".join(t for at, t in self.segments.values() if after < at <= until and t)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


@dataclass
class _Figures:
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    interruptions: int = 0
    yielded: int = 0
    talked_over: int = 0
    edits: int = 0
    words: int = 0

    def metrics(self) -> dict[str, float | int | None]:
        return {
            "latency_p50_ms": percentile(self.latencies, 0.50),
            "latency_p95_ms": percentile(self.latencies, 0.95),
            "answered_turns": len(self.latencies),
            "unanswered_turns": self.unanswered,
            "interruptions": self.interruptions,
            "interruptions_yielded": self.yielded,
            "agent_over_caller": self.talked_over,
            "wer": round(self.edits / self.words, 3) if self.words else None,
        }


class AudioCall:
    def __init__(
        self, scenario: Scenario, target: Target, caller: SimulatedCaller, models: AsyncOpenAI
    ) -> None:
        self.scenario = scenario
        self.caller = caller
        self.models = models
        providers = target.config.voice.providers.openai
        self.tts_model, self.stt_model = providers.tts.model, providers.stt.model
        self.answer_timeout = target.config.realtime.rollout.answer_timeout_seconds
        self.room = RoomCaller()
        self.conv = Conversation()
        self.figures = _Figures()
        # Each agent turn: its event and the window its transcript segments opened in.
        self._turns: list[tuple[Event, float, float]] = []

    async def speech(self, text: str) -> np.ndarray:
        resp = await self.models.audio.speech.create(
            model=self.tts_model, voice=CALLER_VOICE, input=text, response_format="wav"
        )
        return _pcm(resp.content)

    async def hear(
        self, window: tuple[float, float], start: float, end: float, latency: float | None
    ) -> None:
        """The agent's turn: what the caller's STT heard of it. What the agent says it said is
        filled in at the end (`settle`): an interrupted turn's transcript closes only later."""
        audio = self.room.audio(start, end)
        heard = ""
        if audio.size:
            wav = ("agent.wav", _wav(audio), "audio/wav")
            heard = (
                await self.models.audio.transcriptions.create(model=self.stt_model, file=wav)
            ).text
        ms = None if latency is None else round(latency * 1000, 1)
        event = Event(kind="agent", heard=heard, latency_ms=ms)
        self.conv.add(event)
        self._turns.append((event, *window))

    async def settle(self) -> None:
        """Each agent turn's own transcript, and the word error rate of what the caller heard."""
        deadline = time.monotonic() + SETTLE
        while self.room.reading and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for event, after, until in self._turns:
            event.text = self.room.said(after, until)
            edits, words = word_errors(event.text, event.heard or "")
            self.figures.edits += edits
            self.figures.words += words

    async def listen(
        self, after: float, timeout: float, since_caller: float | None, cut_in: bool = False
    ) -> bool:
        """Waits for the agent's turn after `after` and hears it (only its first moment when the
        caller will `cut_in`); False when it never came."""
        onset = await self.room.first_voice(after, timeout)
        if onset is None:
            return False
        if cut_in:
            end = onset + INTERRUPT_AFTER
            await asyncio.sleep(max(0.0, end - time.monotonic()))
        else:
            end = await self.room.quiet(onset)
        latency = None if since_caller is None else onset - since_caller
        await self.hear((after, end), onset, end, latency)
        return True

    async def turn(self, line: str, cut_in: bool) -> None:
        """Says `line` and listens to the answer; with `cut_in`, the caller's next line will
        start while that answer is still playing."""
        samples = await self.speech(line)
        agent_talking = self.room.speaking_at(time.monotonic())
        self.conv.add(Event(kind="caller", text=line))
        start, end = await self.room.say(samples)
        if not agent_talking and self.room.voice(start + 0.3, end):
            self.figures.talked_over += 1
        if await self.listen(end, self.answer_timeout, since_caller=end, cut_in=cut_in):
            self.figures.latencies.append(self.conv.latencies()[-1])
        else:
            self.figures.unanswered += 1
        if agent_talking:
            self.figures.interruptions += 1
            await asyncio.sleep(max(0.0, start + YIELD_WITHIN + GAP - time.monotonic()))
            if self.room.went_quiet(start, YIELD_WITHIN):
                self.figures.yielded += 1

    async def run(self, url: str, token: str) -> Conversation:
        joined = time.monotonic()
        await self.room.join(url, token)
        try:
            await asyncio.wait_for(self.room.agent_here.wait(), AGENT_JOIN_TIMEOUT)
        except TimeoutError as exc:
            raise RuntimeError(
                f"no agent joined the room within {AGENT_JOIN_TIMEOUT:.0f} s"
            ) from exc
        # The greeting, if the agent speaks first; a silent caller waits longer.
        wait = self.scenario.silence_seconds if self.scenario.silent else 3.0
        await self.listen(joined, wait, since_caller=None)
        interrupts = "interrupts" in self.scenario.persona.behaviour
        for n in range(self.scenario.max_turns):
            if self.room.agent_left:
                break
            line = await self.caller.next_line(self.conv)
            if line is None:
                break
            await self.turn(line, cut_in=interrupts and n + 1 < self.scenario.max_turns)
        await self.settle()
        self.conv.ended_by_agent = self.room.agent_left
        if self.conv.ended_by_agent:
            self.conv.add(Event(kind="end_call"))
        self.conv.metrics = self.figures.metrics()
        return self.conv


async def run_audio(
    scenario: Scenario,
    target: Target,
    caller: SimulatedCaller,
    api: ControlPlane,
    models: AsyncOpenAI,
) -> Conversation:
    """One conversation in a real room, the session created through the API with the version
    pinned (or the deployment's own agent)."""
    if scenario.channel == "phone":
        raise ValueError("audio runs are web sessions; give this scenario `modes: [text]`")
    body: dict[str, object] = {"end_user_id": "eval-caller"}
    if target.agent_id is not None:
        body |= {"agent_id": target.agent_id, "agent_version": target.version}
    if scenario.instructions:
        body["instructions"] = scenario.instructions
    if scenario.variables:
        body["variables"] = scenario.variables
    created = await api.create_session(body)
    call = AudioCall(scenario, target, caller, models)
    try:
        return await call.run(created["url"], created["token"])
    finally:
        await call.room.leave()
        with contextlib.suppress(Exception):
            await api.end_session(created["session_id"])
