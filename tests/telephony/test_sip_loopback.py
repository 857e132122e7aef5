"""Phone calls through the real SIP service: a scripted phone calls in and hears the agent."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from livekit import api

from functions.store.sip import OutboundTrunk, sync_outbound
from infra.local.stack import free_port
from tests.support.phone import Phone, recorded_seconds, speech_seconds, wait_until_heard
from tests.support.phone_stack import PhoneStack

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


def hear_the_agent(phone: Phone, recording: Path) -> dict[str, object]:
    """Waits for media and the agent's speech, hangs up; returns the phone's `media` event."""
    media = phone.wait_for("media", WAIT)
    heard = wait_until_heard(recording, HEARD_SECONDS, WAIT)
    print(f"\ncodec {media['codec']}, heard {heard:.2f} s of speech")
    phone.send("hangup")
    phone.wait_for("disconnected", WAIT)
    # An answering phone would wait for the next call: quitting writes its recording out.
    phone.send("quit")
    phone.wait_for("recorded", WAIT)
    return media


async def test_a_phone_calling_the_inbound_number_hears_the_agent_greet_it(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    phone = phone_stack.call_in(tmp_path, "caller")
    try:
        phone.wait_for("confirmed", WAIT)
        # The dispatch rule made a room of the call's own (`<prefix>_<caller>_<random>`) and
        # dispatched the agent into it.
        await wait_for_call_room(lk, "phone-_caller_", WAIT)
        hear_the_agent(phone, tmp_path / "caller.wav")
    finally:
        phone.stop()
    # The finished recording, read as a proper WAV, holds the greeting.
    assert speech_seconds(tmp_path / "caller.wav") >= HEARD_SECONDS


async def test_a_phone_that_offers_only_pcmu_hears_the_agent(
    phone_stack: PhoneStack, tmp_path: Path
) -> None:
    """Real trunks speak G.711; the SIP service's default pick with pjsua2 would be G.722."""
    phone = phone_stack.call_in(tmp_path, "pcmu", codec="PCMU/8000")
    try:
        media = hear_the_agent(phone, tmp_path / "pcmu.wav")
    finally:
        phone.stop()
    assert media["codec"] == "PCMU"
    assert speech_seconds(tmp_path / "pcmu.wav") >= HEARD_SECONDS


def phone_to_dial(tmp_path: Path, name: str, mode: str = "answer") -> tuple[Phone, int]:
    """A phone waiting for calls (answering or rejecting them), and its SIP port."""
    port = free_port()
    phone = Phone.start(
        tmp_path,
        name,
        sip_port=port,
        rtp_port=free_port(),
        mode=mode,
        record=tmp_path / f"{name}.wav",
    )
    return phone, port


async def place_call(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, name: str, port: int, with_agent: bool
) -> api.SIPParticipantInfo:
    """LiveKit calls the phone at `port` into a new room (with our agent or not), until answered."""
    trunk = OutboundTrunk(
        name=name, address=f"127.0.0.1:{port}", number="+15550199", transport="udp"
    )
    trunk_id = await sync_outbound(lk, trunk)
    room = f"call-out-{uuid.uuid4().hex[:8]}"
    agents = [phone_stack.agent_dispatch()] if with_agent else []
    await lk.room.create_room(api.CreateRoomRequest(name=room, agents=agents))
    participant = await lk.sip.create_sip_participant(
        api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=name,
            room_name=room,
            participant_identity=name,
            wait_until_answered=True,
        )
    )
    assert participant.room_name == room
    return participant


async def test_an_outbound_call_rings_a_phone_that_answers_and_hears_the_agent(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    phone, port = phone_to_dial(tmp_path, "callee")
    try:
        await place_call(phone_stack, lk, "callee", port, with_agent=True)
        phone.wait_for("incoming", WAIT)
        hear_the_agent(phone, tmp_path / "callee.wav")
    finally:
        phone.stop()
    assert speech_seconds(tmp_path / "callee.wav") >= HEARD_SECONDS


async def test_a_call_into_a_room_without_an_agent_records_no_speech(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    """The control for the tests above: the call path itself adds nothing that counts as speech."""
    phone, port = phone_to_dial(tmp_path, "lonely")
    recording = tmp_path / "lonely.wav"
    try:
        await place_call(phone_stack, lk, "lonely", port, with_agent=False)
        phone.wait_for("media", WAIT)
        deadline = time.monotonic() + WAIT
        # As much call audio as the other tests need to hear a greeting in, and then some.
        while recorded_seconds(recording, partial=True) < 4 * HEARD_SECONDS:
            assert time.monotonic() < deadline, "the phone recorded no call audio"
            await asyncio.sleep(0.25)
        phone.send("hangup")
        phone.wait_for("disconnected", WAIT)
        phone.send("quit")
        phone.wait_for("recorded", WAIT)
    finally:
        phone.stop()
    assert recorded_seconds(recording) >= 4 * HEARD_SECONDS
    assert speech_seconds(recording) == 0.0


async def test_an_outbound_call_to_a_phone_that_rejects_it_fails_with_the_phones_sip_status(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    phone, port = phone_to_dial(tmp_path, "busy", mode="reject")
    try:
        with pytest.raises(api.SipCallError) as rejected:
            await place_call(phone_stack, lk, "busy", port, with_agent=True)
        phone.wait_for("incoming", WAIT)
    finally:
        phone.stop()
    assert rejected.value.sip_status_code == 486
