"""Phone calls through the real SIP service: a scripted phone calls in and hears the agent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from livekit import api

from infra.local.stack import free_port
from tests.support.phone import Phone, speech_seconds
from tests.telephony.conftest import PhoneStack

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
# The greeting is a sentence: over a second of it must reach the phone, not a click or a blip.
HEARD_SECONDS = 1.0


async def wait_for_call_room(lk: api.LiveKitAPI, prefix: str, timeout: float) -> str:
    """The room the dispatch rule made for the call, once it holds both the phone and the agent."""
    deadline = time.monotonic() + timeout
    seen: list[tuple[str, list[int]]] = []
    while time.monotonic() < deadline:
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        seen = []
        for room in rooms:
            if not room.name.startswith(prefix):
                continue
            people = (
                await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
            ).participants
            kinds = [p.kind for p in people]
            seen.append((room.name, kinds))
            if api.ParticipantInfo.Kind.SIP in kinds and api.ParticipantInfo.Kind.AGENT in kinds:
                return room.name
        await asyncio.sleep(0.2)
    raise AssertionError(f"no call room with a phone and an agent after {timeout:.0f} s: {seen}")


async def wait_until_heard(recording: Path, seconds: float, timeout: float) -> float:
    """Reads the phone's recording as it grows until it holds `seconds` of speech."""
    deadline = time.monotonic() + timeout
    heard = 0.0
    while time.monotonic() < deadline:
        if recording.exists():
            heard = speech_seconds(recording, partial=True)
            if heard >= seconds:
                return heard
        await asyncio.sleep(0.25)
    raise AssertionError(f"the phone heard {heard:.2f} s of speech after {timeout:.0f} s")


def call_in(phone_stack: PhoneStack, tmp_path: Path, name: str, codec: str | None = None) -> Phone:
    return Phone.start(
        tmp_path,
        name,
        sip_port=free_port(),
        rtp_port=free_port(),
        mode="call",
        call=phone_stack.inbound_uri,
        record=tmp_path / f"{name}.wav",
        codec=codec,
    )


async def test_a_phone_calling_the_inbound_number_hears_the_agent_greet_it(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    phone = call_in(phone_stack, tmp_path, "caller")
    try:
        phone.wait_for("confirmed", WAIT)
        media = phone.wait_for("media", WAIT)
        room = await wait_for_call_room(lk, "call-", WAIT)
        heard = await wait_until_heard(tmp_path / "caller.wav", HEARD_SECONDS, WAIT)
        print(f"\nroom {room}, codec {media['codec']}, heard {heard:.2f} s of speech")
        phone.send("hangup")
        phone.wait_for("disconnected", WAIT)
        phone.wait_for("recorded", WAIT)
    finally:
        phone.stop()
    # The finished recording, read as a proper WAV, holds the greeting.
    assert speech_seconds(tmp_path / "caller.wav") >= HEARD_SECONDS
