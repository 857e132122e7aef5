"""Phone calls as sessions, through the real SIP service, Redis, LiveKit, API, webhooks and worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api

from infra.local.stack import free_port
from tests.support.fake_openai import ANSWER, QUESTION, FakeOpenAIServer, espeak_samples, to_wav
from tests.support.phone import Phone, recorded_seconds, speech_seconds, wait_until_heard
from tests.support.phone_stack import INBOUND_NUMBER, PhoneStack
from tests.support.stack import API, log_tail, poll_session, session_report
from tests.support.tools import missing_tool
from voice.rooms import session_id_from_room

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
# The greeting is a sentence: over a second of it must reach the phone, not a click or a blip.
HEARD_SECONDS = 1.0


@pytest.fixture
async def dev_api(phone_stack: PhoneStack) -> AsyncIterator[httpx.AsyncClient]:
    """The API as the local dev user, who owns the inbound number in the repo's config."""
    key, user = phone_stack.stack.api_keys[0]
    assert user == "dev"
    base = phone_stack.stack.api_url + API
    async with httpx.AsyncClient(base_url=base, headers={"x-api-key": key}, timeout=10) as c:
        yield c


def question_wav(run_dir: Path) -> Path:
    samples = espeak_samples(QUESTION, 16_000)
    if samples is None:
        missing_tool("the phone speaks with espeak-ng, which is missing: make e2e-deps")
    path = run_dir / "question.wav"
    path.write_bytes(to_wav(samples, 16_000))
    return path


async def call_room(lk: api.LiveKitAPI, prefix: str, timeout: float) -> str:
    """The room LiveKit's dispatch rule made for an inbound call, once the phone is in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for room in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
            if room.name.startswith(prefix):
                return room.name
        await asyncio.sleep(0.2)
    raise AssertionError(f"no room starting {prefix!r} after {timeout:.0f} s")


def wait_until_quiet(recording: Path, timeout: float, quiet: float = 1.5) -> float:
    """Waits until the agent has stopped talking for `quiet` seconds; returns the speech heard."""
    deadline = time.monotonic() + timeout
    heard, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        now = speech_seconds(recording, partial=True)
        if now != heard:
            heard, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return heard
        time.sleep(0.1)
    raise AssertionError(f"the agent was still talking after {timeout:.0f} s")


def hang_up(phone: Phone) -> None:
    phone.send("hangup")
    phone.wait_for("disconnected", WAIT)
    # An answering phone would wait for the next call: quitting writes its recording out.
    phone.send("quit")
    phone.wait_for("recorded", WAIT)


async def ended(dev_api: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    return await poll_session(
        dev_api,
        session_id,
        lambda s: s["status"] not in ("pending", "active", "dialing"),
        WAIT,
        "the session to end",
    )


async def test_an_inbound_call_is_a_session_whose_caller_hears_the_greeting_and_an_answer(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    question = question_wav(tmp_path)
    recording = tmp_path / "caller.wav"
    phone = phone_stack.call_in(tmp_path, "caller")
    try:
        phone.wait_for("confirmed", WAIT)
        room = await call_room(lk, "phone-_caller_", WAIT)
        session_id = session_id_from_room(room)
        assert session_id is not None
        live = await poll_session(
            dev_api, session_id, lambda s: s["status"] == "active", WAIT, "the call's session"
        )
        wait_until_heard(recording, HEARD_SECONDS, WAIT)
        greeting = wait_until_quiet(recording, WAIT)
        phone.send("play", path=str(question))
        phone.wait_for("played", WAIT)
        # The answer: more speech than the whole greeting was (the phone records only what it hears).
        wait_until_heard(recording, greeting + HEARD_SECONDS, WAIT)
        wait_until_quiet(recording, WAIT)
        hang_up(phone)
        done = await ended(dev_api, session_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(phone_stack.stack, 'api', 'worker')}") from exc
    finally:
        phone.stop()

    assert live["phone"] == {"direction": "inbound", "number": INBOUND_NUMBER, "remote": "caller"}
    assert live["agent_joined"] is True
    assert done["status"] == "ended"
    listed = (await dev_api.get("/sessions")).json()["sessions"]
    assert session_id in [s["session_id"] for s in listed]
    report: dict[str, Any] | None = None
    deadline = time.monotonic() + WAIT
    while report is None and time.monotonic() < deadline:
        report = session_report(phone_stack.stack, session_id)
        await asyncio.sleep(0.2)
    assert report is not None, "the worker wrote no report for the phone call"
    said = [(t["role"], t["text"]) for t in report["transcript"]]
    assert ("user", QUESTION) in said and ("assistant", ANSWER) in said, said


async def test_keys_the_caller_presses_reach_the_agent_as_text(
    phone_stack: PhoneStack, fake_openai: FakeOpenAIServer, tmp_path: Path
) -> None:
    recording = tmp_path / "keys.wav"
    phone = phone_stack.call_in(tmp_path, "keys")
    try:
        wait_until_heard(recording, HEARD_SECONDS, WAIT)
        wait_until_quiet(recording, WAIT)
        phone.send("dtmf", digits="7")
        phone.wait_for("dtmf", WAIT)
        deadline = time.monotonic() + WAIT
        while not llm_was_told(fake_openai, "phone key '7'"):
            assert time.monotonic() < deadline, "the agent's LLM never saw the key press"
            await asyncio.sleep(0.2)
        hang_up(phone)
    finally:
        phone.stop()


def llm_was_told(fake: FakeOpenAIServer, text: str) -> bool:
    for request in fake.fake.of("/v1/chat/completions"):
        for message in request.body.get("messages", []):
            if message.get("role") == "user" and text in str(message.get("content")):
                return True
    return False


async def test_a_phone_that_offers_only_pcmu_hears_the_agent(
    phone_stack: PhoneStack, tmp_path: Path
) -> None:
    """Real trunks speak G.711; the SIP service's default pick with pjsua2 would be G.722."""
    phone = phone_stack.call_in(tmp_path, "pcmu", codec="PCMU/8000")
    try:
        media = phone.wait_for("media", WAIT)
        wait_until_heard(tmp_path / "pcmu.wav", HEARD_SECONDS, WAIT)
        hang_up(phone)
    finally:
        phone.stop()
    assert media["codec"] == "PCMU"
    assert speech_seconds(tmp_path / "pcmu.wav") >= HEARD_SECONDS


async def test_a_call_to_a_number_that_is_not_configured_is_never_answered(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """LiveKit finds no trunk for the number and closes the call unanswered (it does not tell
    the caller why, so scanners learn nothing): no room, no agent, no session."""
    number = "+15550999"
    uri = f"sip:{number}@{phone_stack.sip.opts.sip_address}"
    phone = Phone.start(
        tmp_path, "stranger", sip_port=free_port(), rtp_port=free_port(), mode="call", call=uri
    )
    try:
        phone.wait_for("calling", WAIT)
        closed = wait_for_log(phone_stack.sip.log_path("sip"), ["Closing inbound call", number])
    finally:
        phone.stop()
    assert '"status": 486' in closed or '"status": 404' in closed, closed
    assert "confirmed" not in [e.get("event") for e in phone.events]
    rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
    assert not [r.name for r in rooms if "stranger" in r.name]
    listed = (await dev_api.get("/sessions", params={"limit": 100})).json()["sessions"]
    assert not [s for s in listed if (s.get("phone") or {}).get("remote") == "stranger"]


def wait_for_log(path: Path, needles: list[str], timeout: float = WAIT) -> str:
    """The first line of a service's log holding every one of `needles`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if all(n in line for n in needles):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {needles} in {path} after {timeout:.0f} s")


async def test_a_call_over_the_owners_session_limit_is_dropped_and_recorded_as_over_limit(
    phone_stack: PhoneStack, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = (await dev_api.get("/config")).json()
    limit = config["realtime"]["limits"]["max_sessions_per_user"]
    # Web sessions nobody joins still hold the owner's slots until they end.
    holders = []
    for _ in range(limit):
        resp = await dev_api.post("/session", json={})
        assert resp.status_code == 201, resp.text
        holders.append(resp.json()["session_id"])
    phone = phone_stack.call_in(tmp_path, "extra")
    try:
        # The call ends without the phone hanging up: the control plane dropped it.
        phone.wait_for("disconnected", WAIT)
    finally:
        phone.stop()
        for session_id in holders:
            await dev_api.delete(f"/session/{session_id}")
    listed = (await dev_api.get("/sessions", params={"limit": 100})).json()["sessions"]
    refused = [s for s in listed if (s.get("phone") or {}).get("remote") == "extra"]
    assert [(s["status"], s["end_reason"]) for s in refused] == [("failed", "over_limit")]


def phone_to_dial(tmp_path: Path, name: str, mode: str = "answer") -> tuple[Phone, str]:
    """A phone waiting for calls (answering or rejecting them), and the SIP URI that rings it."""
    port = free_port()
    phone = Phone.start(
        tmp_path,
        name,
        sip_port=port,
        rtp_port=free_port(),
        mode=mode,
        record=tmp_path / f"{name}.wav",
    )
    return phone, f"sip:{name}@127.0.0.1:{port}"


async def test_an_outbound_call_rings_a_phone_that_answers_and_hears_the_agent(
    phone_stack: PhoneStack, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    phone, uri = phone_to_dial(tmp_path, "callee")
    try:
        resp = await dev_api.post(
            "/call", json={"to": uri, "greeting": "Say hello and that you are calling back."}
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["status"] == "dialing"
        phone.wait_for("incoming", WAIT)
        await poll_session(
            dev_api, created["session_id"], lambda s: s["status"] == "active", WAIT, "the answer"
        )
        wait_until_heard(tmp_path / "callee.wav", HEARD_SECONDS, WAIT)
        hang_up(phone)
        done = await ended(dev_api, created["session_id"])
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(phone_stack.stack, 'api', 'worker')}") from exc
    finally:
        phone.stop()
    assert done["status"] == "ended"
    assert done["phone"]["direction"] == "outbound"
    assert speech_seconds(tmp_path / "callee.wav") >= HEARD_SECONDS


async def test_an_outbound_call_to_a_phone_that_rejects_it_ends_failed_rejected(
    phone_stack: PhoneStack, dev_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    phone, uri = phone_to_dial(tmp_path, "busy", mode="reject")
    try:
        resp = await dev_api.post("/call", json={"to": uri})
        assert resp.status_code == 201, resp.text
        session_id = resp.json()["session_id"]
        phone.wait_for("incoming", WAIT)
        done = await ended(dev_api, session_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(phone_stack.stack, 'api')}") from exc
    finally:
        phone.stop()
    assert (done["status"], done["end_reason"]) == ("failed", "rejected")


async def test_placing_a_call_to_something_that_is_not_a_number_is_a_422_naming_the_field(
    dev_api: httpx.AsyncClient,
) -> None:
    resp = await dev_api.post("/call", json={"to": "call my mother"})
    assert resp.status_code == 422
    assert resp.json()["error"] == "validation_error"
    assert "E.164" in resp.json()["message"]


async def test_a_call_into_a_room_without_an_agent_records_no_speech(
    phone_stack: PhoneStack, lk: api.LiveKitAPI, tmp_path: Path
) -> None:
    """The control for the tests above: the call path itself adds nothing that counts as speech."""
    phone, uri = phone_to_dial(tmp_path, "lonely")
    recording = tmp_path / "lonely.wav"
    room = f"lonely-{uuid.uuid4().hex[:8]}"
    try:
        await lk.room.create_room(api.CreateRoomRequest(name=room))
        user, _, host = uri.removeprefix("sip:").partition("@")
        await lk.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                trunk=api.SIPOutboundConfig(
                    hostname=host, transport=api.SIPTransport.SIP_TRANSPORT_UDP
                ),
                sip_number="+15550199",
                sip_call_to=user,
                room_name=room,
                participant_identity=user,
                wait_until_answered=True,
            )
        )
        phone.wait_for("media", WAIT)
        deadline = time.monotonic() + WAIT
        # As much call audio as the other tests need to hear a greeting in, and then some.
        while recorded_seconds(recording, partial=True) < 4 * HEARD_SECONDS:
            assert time.monotonic() < deadline, "the phone recorded no call audio"
            await asyncio.sleep(0.25)
        hang_up(phone)
    finally:
        phone.stop()
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    assert recorded_seconds(recording) >= 4 * HEARD_SECONDS
    assert speech_seconds(recording) == 0.0
