"""The beep finder of outbound calls that reach voicemail: a tone is a beep, speech is not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.support.fake_openai import espeak_samples
from voice.config.telephony import VoicemailSettings
from worker.voicemail import RATE, WINDOW, BeepListener, tone_hz


def tone(hz: float, seconds: float, amplitude: float = 9000) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * math.pi * hz * t)).astype(np.int16)


def beeps_in(samples: np.ndarray) -> list[float]:
    listener = BeepListener()
    run: list[float] = []
    end = 0
    for end in range(WINDOW, samples.size + 1, WINDOW):
        listener.feed(samples[end - WINDOW : end], run, end / RATE)
    listener.feed(np.zeros(WINDOW, np.int16), run, (end + WINDOW) / RATE)
    return listener.beeps


def test_a_pure_tone_is_found_at_its_frequency() -> None:
    assert tone_hz(tone(1000, WINDOW / RATE)) == pytest.approx(1000, abs=25)
    assert tone_hz(np.zeros(WINDOW, np.int16)) is None


def test_a_beep_after_a_greeting_is_found_once_where_it_ends() -> None:
    speech = espeak_samples("Please leave a message after the beep.", RATE)
    if speech is None:
        pytest.skip("espeak-ng is missing: make e2e-deps")
    silence = np.zeros(int(0.4 * RATE), np.int16)
    samples = np.concatenate([speech, silence, tone(1000, 0.5), silence])
    [ended] = beeps_in(samples)
    beep_end = (speech.size + silence.size) / RATE + 0.5
    assert ended == pytest.approx(beep_end, abs=0.1)


def test_speech_and_a_blip_are_not_beeps() -> None:
    speech = espeak_samples("Hello, this is Sam speaking, who is calling please?", RATE)
    if speech is None:
        pytest.skip("espeak-ng is missing: make e2e-deps")
    assert beeps_in(speech) == []
    assert beeps_in(np.concatenate([tone(1000, 0.08), np.zeros(RATE, np.int16)])) == []


def test_leaving_a_message_needs_the_message() -> None:
    with pytest.raises(ValueError, match="needs a message"):
        VoicemailSettings(detect=True, action="leave_message")
    assert VoicemailSettings(action="leave_message", message="Call us back.").message
