"""Outbound calls answered by a machine: livekit-agents' answering-machine detector (AMD) listens to
how the callee answers; on a machine the agent hangs up, or waits for the beep and leaves the
configured message as written; the session then ends `voicemail`.

The detector classifies the greeting with the call's own STT and LLM (never LiveKit's cloud
inference: we pass `llm=None, stt=None`). It has no beep detector: `BeepListener` is ours, a
tone finder on the callee's audio that runs from the answer on, because the beep usually comes
before the detector has settled (it waits for the end of the greeting's turn)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import api, rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.voice.amd import AMD, AMDCategory

from voice.config.telephony import VoicemailSettings
from voice.metadata import END_REASON_ATTRIBUTE, VOICEMAIL

if TYPE_CHECKING:
    from loguru import Logger

RATE = 16_000
WINDOW = 640  # 40 ms: 25 Hz bins
# A beep: one frequency holding most of the energy for this many windows in a row (160 ms).
BEEP_WINDOWS = 4
TONE_SHARE = 0.8
MIN_TONE_HZ, MAX_TONE_HZ = 300.0, 3000.0
MIN_TONE_RMS = 300.0
_PLAYOUT_TIMEOUT = 60.0


def tone_hz(window: np.ndarray) -> float | None:
    """The frequency of a pure tone filling `window` (int16 samples at 16 kHz), else None."""
    samples = window.astype(np.float64)
    if float(np.sqrt(np.mean(samples**2))) < MIN_TONE_RMS:
        return None
    power = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    power[0] = 0.0
    peak = int(np.argmax(power))
    share = float(power[max(peak - 1, 0) : peak + 2].sum() / max(power.sum(), 1e-9))
    hz = peak * RATE / samples.size
    return hz if share >= TONE_SHARE and MIN_TONE_HZ <= hz <= MAX_TONE_HZ else None


@dataclass
class BeepListener:
    """Finds beeps in the callee's audio; `beeps` holds when each one ended (monotonic time)."""

    beeps: list[float] = field(default_factory=list)
    _heard: asyncio.Event = field(default_factory=asyncio.Event)

    def feed(self, samples: np.ndarray, run: list[float], at: float) -> None:
        """One window; `run` is the current tone's frequencies (shared state between windows)."""
        hz = tone_hz(samples)
        if hz is not None and (not run or abs(hz - run[-1]) <= 50.0):
            run.append(hz)
            return
        if len(run) >= BEEP_WINDOWS:
            self.beeps.append(at)
            self._heard.set()
        run.clear()
        if hz is not None:
            run.append(hz)

    async def listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        pending = np.zeros(0, dtype=np.int16)
        run: list[float] = []
        try:
            async for event in stream:
                pending = np.concatenate([pending, np.frombuffer(event.frame.data, np.int16)])
                while pending.size >= WINDOW:
                    self.feed(pending[:WINDOW], run, time.monotonic())
                    pending = pending[WINDOW:]
        finally:
            await stream.aclose()

    async def beep_after(self, since: float, timeout: float) -> bool:
        """True once a beep has ended after `since` (at once if one has); False after `timeout`."""
        deadline = time.monotonic() + timeout
        while not any(at > since for at in self.beeps):
            self._heard.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heard.wait(), left)
        return True


@dataclass
class Voicemail:
    """Screens one outbound call's answer and deals with a machine."""

    ctx: JobContext
    session: AgentSession[Any]
    phone: rtc.RemoteParticipant
    settings: VoicemailSettings
    log: Logger
    message: str | None = None

    async def screen(self) -> bool:
        """Listens to the answer; True when a machine was met (and dealt with: the call is over)."""
        answered_at = time.monotonic()
        beeps = BeepListener()
        listener = asyncio.create_task(self._listen_for_beeps(beeps), name="beep_listener")
        try:
            async with AMD(
                self.session,
                llm=None,
                stt=None,
                participant_identity=self.phone.identity,
                ivr_detection=False,
                suppress_compatibility_warning=True,
                detection_options={"timeout": self.settings.detection_timeout_seconds},
            ) as detector:
                try:
                    result = await detector.execute()
                except RuntimeError:  # the callee hung up (or the job ended) before a verdict
                    self.log.info("answer not screened: the call ended first")
                    return False
            self.log.info(
                "answer screened",
                category=result.category.value,
                reason=result.reason,
                speech_seconds=round(result.speech_duration, 2),
            )
            if result.category not in (AMDCategory.MACHINE_VM, AMDCategory.MACHINE_UNAVAILABLE):
                return False
            # Nothing the machine says from now on is a turn to answer (the beep listener has its
            # own stream of the callee's audio).
            self.session.input.set_audio_enabled(False)
            self.session.clear_user_turn()
            self.session.interrupt(force=True)
            leave = (
                self.settings.action == "leave_message"
                and result.category is AMDCategory.MACHINE_VM
                and self.message
            )
            if leave:
                await self._leave_message(beeps, answered_at)
            await self._hang_up()
            return True
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def _listen_for_beeps(self, beeps: BeepListener) -> None:
        for _ in range(100):  # the phone's track is published right after the answer
            track = next(
                (p.track for p in self.phone.track_publications.values() if p.track is not None),
                None,
            )
            if track is not None:
                await beeps.listen(track)
                return
            await asyncio.sleep(0.05)

    async def _leave_message(self, beeps: BeepListener, answered_at: float) -> None:
        heard = await beeps.beep_after(answered_at, self.settings.beep_timeout_seconds)
        self.log.info("leaving a voicemail", after_beep=heard)
        assert self.message is not None
        handle = self.session.say(self.message, allow_interruptions=False, add_to_chat_ctx=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.wait_for_playout(), _PLAYOUT_TIMEOUT)

    async def _hang_up(self) -> None:
        """Marks the phone's participant (the control plane ends the session `voicemail` when
        it leaves), then removes it: LiveKit's SIP service hangs up."""
        room = self.ctx.room.name
        identity = self.phone.identity
        try:
            await self.ctx.api.room.update_participant(
                api.UpdateParticipantRequest(
                    room=room, identity=identity, attributes={END_REASON_ATTRIBUTE: VOICEMAIL}
                )
            )
            await self.ctx.api.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        except Exception as exc:  # the machine may have hung up first; the job ends either way
            self.log.warning("could not hang up on the machine", error=repr(exc))
        self.ctx.shutdown(reason=VOICEMAIL)
