"""A caller for end-to-end tests: joins a LiveKit room, speaks real audio, hears the agent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from tests.support.fake_openai import espeak_samples

RATE = 48_000
FRAME_MS = 10
FRAME = RATE * FRAME_MS // 1000
# Int16 RMS above this is the agent speaking; the decoded silence of an idle track sits near 0.
VOICE_RMS = 300.0
TRANSCRIPTION_TOPIC = "lk.transcription"
BACKGROUND_TRACK = "background_audio"  # the thinking sound, not the agent's voice


def speech(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng, int16 mono at 48 kHz."""
    samples = espeak_samples(text, RATE)
    if samples is None:
        # A tone would not pass the agent's voice activity detector: no stand-in here.
        raise RuntimeError("the caller speaks with espeak-ng, which is missing: make e2e-deps")
    # espeak-ng ends with ~0.3 s of silence: trimmed, so the speech ends when `say` returns.
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > VOICE_RMS)
    return samples[: loud[-1] + 1] if loud.size else samples


@dataclass
class Transcript:
    identity: str
    text: str
    attributes: dict[str, str]


@dataclass
class Caller:
    """Keeps a microphone track live (silence between utterances), as a real client does."""

    identity: str = ""
    room: rtc.Room = field(default_factory=rtc.Room)
    # (monotonic time, RMS) of every 10 ms frame of the agent's voice tracks.
    heard: list[tuple[float, float]] = field(default_factory=list)
    transcripts: list[Transcript] = field(default_factory=list)
    agents_joined: list[str] = field(default_factory=list)
    agents_left: list[str] = field(default_factory=list)
    _pending: list[np.ndarray] = field(default_factory=list)
    _spoken: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _source: rtc.AudioSource | None = None

    async def join(self, url: str, token: str) -> None:
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_connected)
        self.room.on("participant_disconnected", self._on_disconnected)
        self.room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_text)
        await self.room.connect(url, token)
        self.identity = self.room.local_participant.identity
        for p in self.room.remote_participants.values():
            self._on_connected(p)
        # One frame of queue: the time `say` returns is when the speech left, within 10 ms.
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=FRAME_MS)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._tasks.append(asyncio.create_task(self._microphone()))

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.room.disconnect()

    # -- speaking -------------------------------------------------------------------------------

    async def say(self, samples: np.ndarray) -> float:
        """Speaks `samples` in real time; returns the monotonic time the last frame went out."""
        self._spoken.clear()
        self._pending.append(samples.astype(np.int16))
        await self._spoken.wait()
        return time.monotonic()

    async def _microphone(self) -> None:
        assert self._source is not None
        silence = np.zeros(FRAME, dtype=np.int16)
        current = np.zeros(0, dtype=np.int16)
        pos = 0
        next_at = time.monotonic()
        while True:
            if pos >= current.size and self._pending:
                current, pos = self._pending.pop(0), 0
            if pos < current.size:
                chunk = current[pos : pos + FRAME]
                chunk = np.pad(chunk, (0, FRAME - chunk.size))
                pos += FRAME
                if pos >= current.size:
                    current, pos = np.zeros(0, dtype=np.int16), 0
                    self._spoken.set()
            else:
                chunk = silence
            await self._source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))
            next_at += FRAME / RATE
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # -- hearing --------------------------------------------------------------------------------

    def voice_at(self, after: float) -> float | None:
        """When the agent's voice was first heard after `after`, or None."""
        return next((t for t, rms in self.heard if t > after and rms >= VOICE_RMS), None)

    async def wait_for_voice(self, after: float, timeout: float) -> float:
        await wait_until(lambda: self.voice_at(after) is not None, timeout, "the agent's voice")
        found = self.voice_at(after)
        assert found is not None
        return found

    async def wait_for_quiet(self, quiet: float, timeout: float) -> float:
        """Waits until the agent has been silent for `quiet` seconds; returns that moment."""

        def last_voice() -> float:
            return max((t for t, rms in self.heard if rms >= VOICE_RMS), default=0.0)

        await wait_until(
            lambda: time.monotonic() - last_voice() >= quiet, timeout, "the agent to stop talking"
        )
        return time.monotonic()

    def said_by(self, identity: str) -> list[str]:
        return [t.text for t in self.transcripts if t.identity == identity and t.text.strip()]

    def _on_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agents_joined.append(participant.identity)

    def _on_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agents_left.append(participant.identity)

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if (
            track.kind == rtc.TrackKind.KIND_AUDIO
            and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            and publication.name != BACKGROUND_TRACK
        ):
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        try:
            async for ev in stream:
                samples = np.frombuffer(ev.frame.data, dtype=np.int16).astype(np.float64)
                rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
                self.heard.append((time.monotonic(), rms))
        finally:
            await stream.aclose()

    def _on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            self.transcripts.append(Transcript(identity, text, dict(reader.info.attributes or {})))

        self._tasks.append(asyncio.create_task(read()))


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
