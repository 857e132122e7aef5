"""Outbound calls that reach voicemail, with scripted SIP phones through the real SIP service: a
person who answers gets the conversation; a machine that plays its greeting and a beep gets the
configured message after the beep, and the session ends `voicemail`."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from livekit import api

from infra.local.stack import free_port
from tests.support.config_files import config_with
from tests.support.fake_openai import (
    ANSWER,
    QUESTION,
    FakeOpenAIServer,
    espeak_samples,
    to_wav,
)
from tests.support.phone import (
    Phone,
    first_speech_at,
    recording,
    speech_seconds,
    wait_until_heard,
)
from tests.support.phone_stack import PhoneStack, phone_stack_with_fake_models
from tests.support.stack import API, log_tail, poll_session
from tests.support.tools import missing_tool

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
RATE = 16_000
MESSAGE = "Hi, this is Acme about your order. Please call us back on the number we texted."
MACHINE_GREETING = (
    "Hi, you have reached Sam. I can't take your call right now. "
    "Please leave a message after the beep."
)


@pytest.fixture(scope="module")
def phone_stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PhoneStack]:
    run_dir = tmp_path_factory.mktemp("voicemail-stack")
    config = config_with(
        run_dir / "voice.yaml",
        {
            "telephony": {
                "voicemail": {
                    "detect": True,
                    "action": "leave_message",
                    "message": MESSAGE,
                    "beep_timeout_seconds": 10,
                }
            },
            # A job process's start may take over the default 10 s on a loaded test machine.
            "worker": {"initialize_process_timeout": 60, "max_jobs": 1},
        },
    )
    with phone_stack_with_fake_models(run_dir, fake_openai, config_uri=str(config)) as ps:
        yield ps


@pytest.fixture
async def dev_api(phone_stack: PhoneStack) -> AsyncIterator[httpx.AsyncClient]:
    key, _ = phone_stack.stack.api_keys[0]
    base = phone_stack.stack.api_url + API
    async with httpx.AsyncClient(base_url=base, headers={"x-api-key": key}, timeout=30) as c:
        yield c


def spoken(text: str) -> np.ndarray:
    samples = espeak_samples(text, RATE)
    if samples is None:
        missing_tool("the phones speak with espeak-ng, which is missing: make e2e-deps")
    return samples


BEEP_HZ = 1000.0
# Between the greeting and the beep: long enough that an agent speaking at the greeting's end
# (not waiting for the beep) would be heard before the beep.
PAUSE_BEFORE_BEEP_S = 1.5


def machine_wav(path: Path) -> None:
    """The answering machine's side: its greeting, a pause, a 0.6 s beep at 1 kHz."""
    pause = np.zeros(int(PAUSE_BEFORE_BEEP_S * RATE), dtype=np.int16)
    t = np.arange(int(0.6 * RATE)) / RATE
    beep = (9000 * np.sin(2 * math.pi * BEEP_HZ * t)).astype(np.int16)
    path.write_bytes(to_wav(np.concatenate([spoken(MACHINE_GREETING), pause, beep]), RATE))


def beep_ends_at(mix: Path) -> float:
    """Where the machine's beep ends in the phone's mix recording (seconds), found as the longest
    run of 20 ms windows whose energy sits at the beep's frequency."""
    samples, rate = recording(mix)
    window = int(rate * 0.02)
    count = samples.size // window
    frames = samples[: count * window].astype(np.float64).reshape(count, window)
    power = np.abs(np.fft.rfft(frames * np.hanning(window), axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1 / rate)
    near = (freqs > BEEP_HZ - 100) & (freqs < BEEP_HZ + 100)
    share = power[:, near].sum(axis=1) / np.maximum(power.sum(axis=1), 1e-9)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 1000
    tone = (share > 0.8) & loud
    best_end, best_len, run = 0, 0, 0
    for i, is_tone in enumerate(tone):
        run = run + 1 if is_tone else 0
        if run > best_len:
            best_end, best_len = i + 1, run
    assert best_len * 0.02 >= 0.3, "no beep in the phone's recording of what it played"
    return best_end * 0.02


def answering_phone(tmp_path: Path, name: str) -> tuple[Phone, str]:
    """A phone that answers, recording what it hears (and, on the same timeline, what it hears
    and plays mixed); the test tells it what to play."""
    port = free_port()
    phone = Phone.start(
        tmp_path,
        name,
        sip_port=port,
        rtp_port=free_port(),
        mode="answer",
        record=tmp_path / f"{name}.wav",
        record_mix=tmp_path / f"{name}-mix.wav",
    )
    return phone, f"sip:{name}@127.0.0.1:{port}"


async def speak_once_the_agent_listens(
    phone: Phone, lk: api.LiveKitAPI, room: str, says: Path
) -> None:
    """Plays `says` once the agent's audio is up in the room (it listens from then on; on a
    loaded machine its job may start seconds after the answer, and a greeting played before that
    is lost)."""
    phone.wait_for("media", WAIT)
    deadline = time.monotonic() + WAIT
    while True:
        people = (
            await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        ).participants
        if any(p.kind == api.ParticipantInfo.Kind.AGENT and p.tracks for p in people):
            break
        assert time.monotonic() < deadline, "the agent never published its audio"
        await asyncio.sleep(0.1)
    phone.send("play", path=str(says))


def answers(fake_openai: FakeOpenAIServer) -> int:
    return len(
        [r for r in fake_openai.fake.of("/v1/audio/speech") if r.body.get("input") == ANSWER]
    )


def messages_left(fake_openai: FakeOpenAIServer) -> int:
    """How often the agent has spoken the voicemail message (the TTS gets it sentence by sentence)."""
    said = " ".join(r.body.get("input", "") for r in fake_openai.fake.of("/v1/audio/speech"))
    return said.count(MESSAGE)


async def ended(dev_api: httpx.AsyncClient, session_id: str) -> dict:
    return await poll_session(
        dev_api,
        session_id,
        lambda s: s["status"] not in ("pending", "active", "dialing"),
        WAIT,
        "the session to end",
    )


async def test_a_machine_gets_the_message_after_its_beep_and_the_session_ends_voicemail(
    phone_stack: PhoneStack,
    dev_api: httpx.AsyncClient,
    lk: api.LiveKitAPI,
    fake_openai: FakeOpenAIServer,
    tmp_path: Path,
) -> None:
    fake_openai.fake.transcript = MACHINE_GREETING
    machine_wav(tmp_path / "machine-says.wav")
    phone, uri = answering_phone(tmp_path, "machine")
    try:
        resp = await dev_api.post("/call", json={"to": uri})
        assert resp.status_code == 201, resp.text
        session_id, room = resp.json()["session_id"], resp.json()["room_name"]
        phone.wait_for("incoming", WAIT)
        await speak_once_the_agent_listens(phone, lk, room, tmp_path / "machine-says.wav")
        # The agent hangs up once the message is left: the machine sees the call end.
        phone.wait_for("disconnected", 2 * WAIT)
        phone.send("quit")
        phone.wait_for("recorded", WAIT)
        done = await ended(dev_api, session_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(phone_stack.stack, 'api', 'worker')}") from exc
    finally:
        phone.stop()
        fake_openai.fake.transcript = QUESTION
    assert (done["status"], done["end_reason"]) == ("ended", "voicemail"), done

    heard = tmp_path / "machine.wav"
    # Nothing before the beep (the agent did not greet the machine), the message after it. Both
    # recordings start on the same tick of the phone's audio clock: the beep's end in the mix is
    # where it ended in what the phone heard (one 20 ms window of slack).
    beep_at = beep_ends_at(tmp_path / "machine-mix.wav")
    first = first_speech_at(heard)
    assert first is not None, "the machine recorded no message"
    assert first >= beep_at - 0.02, (
        f"the agent spoke {first:.2f} s in, before the beep ended at {beep_at:.2f} s"
    )
    assert speech_seconds(heard) >= 2.0
    assert messages_left(fake_openai) == 1, "the message, as written, once"
    # The detector's verdict carries the greeting it heard (as an lk.pii extra): never logged.
    for log in phone_stack.run_dir.glob("*.log"):
        assert "reached Sam" not in log.read_text(errors="replace"), f"{log.name} logs the greeting"


async def test_a_person_who_answers_gets_the_conversation(
    phone_stack: PhoneStack,
    dev_api: httpx.AsyncClient,
    lk: api.LiveKitAPI,
    fake_openai: FakeOpenAIServer,
    tmp_path: Path,
) -> None:
    fake_openai.fake.transcript = QUESTION
    (tmp_path / "person-says.wav").write_bytes(to_wav(spoken(QUESTION), RATE))
    phone, uri = answering_phone(tmp_path, "person")
    messages_before = messages_left(fake_openai)
    answers_before = answers(fake_openai)
    try:
        resp = await dev_api.post("/call", json={"to": uri})
        assert resp.status_code == 201, resp.text
        session_id, room = resp.json()["session_id"], resp.json()["room_name"]
        phone.wait_for("incoming", WAIT)
        await speak_once_the_agent_listens(phone, lk, room, tmp_path / "person-says.wav")
        await poll_session(
            dev_api, session_id, lambda s: s["status"] == "active", WAIT, "the answer"
        )
        # The agent answers the person's question (the test model's answer to it is ANSWER),
        # and the person hears it: the detector let the conversation go on.
        wait_until_heard(tmp_path / "person.wav", 1.0, WAIT)
        assert answers(fake_openai) > answers_before
        phone.send("hangup")
        phone.wait_for("disconnected", WAIT)
        phone.send("quit")
        phone.wait_for("recorded", WAIT)
        done = await ended(dev_api, session_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(phone_stack.stack, 'api', 'worker')}") from exc
    finally:
        phone.stop()
    assert done["end_reason"] != "voicemail", done
    assert done["status"] == "ended"
    assert messages_left(fake_openai) == messages_before, "a person is not left a voicemail"
    assert speech_seconds(tmp_path / "person.wav") >= 1.0
