"""The agent watchdog through its Lambda entry point, with moto's SQS and a real LiveKit server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from livekit import api, rtc

from tests.support.caller import Caller, wait_until
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import LambdaContext, invoke
from tests.support.livekit import LiveKitServer
from tests.support.livekit_events import event_body, post_event, sip_event_body

BASE = "/voice/realtime"
MAX_DISPATCHES = 5  # the shipped config's agent_watchdog.max_dispatches


@pytest.fixture
def queue(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = boto3.client("sqs").create_queue(QueueName="agent-watchdog-test")["QueueUrl"]
    monkeypatch.setenv("AGENT_WATCHDOG_QUEUE_URL", url)
    reset_control_plane()
    yield url


def create(cp: ControlPlane) -> dict[str, Any]:
    r = invoke("POST", f"{BASE}/session", headers=cp.headers(), json={})
    assert r.status == 201, r.body
    return dict(r.body)


def status_of(cp: ControlPlane, sid: str) -> dict[str, Any]:
    return dict(invoke("GET", f"{BASE}/session/{sid}", headers=cp.headers()).body)


def delayed(url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def next_check(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next check once its delay has passed (SQS holds it back until then)."""
    sqs = boto3.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        if got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
            return dict(json.loads(got[0]["Body"]))
    raise AssertionError(f"no agent check arrived within {timeout:.0f} s")


def run(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    """Runs the watchdog Lambda on one SQS batch."""
    from functions.background.agent_watchdog import handler

    records = [
        {"messageId": f"m{i}", "body": b if isinstance(b, str) else json.dumps(b)}
        for i, b in enumerate(bodies)
    ]
    return dict(handler({"Records": records}, LambdaContext(function_name="voice-watchdog")))


def test_a_caller_join_schedules_one_agent_check_a_few_seconds_later(
    control_plane: ControlPlane, queue: str
) -> None:
    s = create(control_plane)
    joined = event_body("participant_joined", s["room_name"], "caller-alice")
    assert post_event(joined).body["action"] == "activated"
    assert post_event(joined).body["action"] == "unchanged"
    assert delayed(queue) == 1
    assert next_check(queue) == {"session_id": s["session_id"], "attempt": 0}


def test_a_check_that_finds_the_agent_does_nothing(control_plane: ControlPlane, queue: str) -> None:
    s = create(control_plane)
    post_event(event_body("participant_joined", s["room_name"], "caller-alice"))
    post_event(event_body("participant_joined", s["room_name"], "agent-AJ_1", agent=True))
    next_check(queue)
    assert run({"session_id": s["session_id"], "attempt": 0}) == {"batchItemFailures": []}
    assert delayed(queue) == 0
    assert status_of(control_plane, s["session_id"])["status"] == "active"


def test_a_malformed_check_is_dropped_and_the_rest_of_the_batch_runs(
    control_plane: ControlPlane, queue: str
) -> None:
    s = create(control_plane)
    out = run("not json", {"session_id": s["session_id"], "attempt": 0})
    # The pending session's caller never joined: nothing to check, nothing to retry.
    assert out == {"batchItemFailures": []}
    assert status_of(control_plane, s["session_id"])["status"] == "pending"


@pytest.fixture
def on_livekit(
    queue: str, livekit_server: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> LiveKitServer:
    monkeypatch.setenv("LIVEKIT_URL", livekit_server.url)
    reset_control_plane()
    return livekit_server


async def dispatches(server: LiveKitServer, room: str) -> list[str]:
    async with server.api() as lk:
        found = await lk.agent_dispatch.list_dispatch(room_name=room)
    return [d.agent_name for d in found]


@pytest.mark.livekit
async def test_no_agent_means_dispatch_again_then_the_session_fails_and_the_caller_is_told(
    control_plane: ControlPlane, queue: str, on_livekit: LiveKitServer
) -> None:
    s = await asyncio.to_thread(create, control_plane)
    caller = Caller()
    notices: list[dict[str, Any]] = []
    gone = asyncio.Event()
    caller.room.on("disconnected", lambda *_: gone.set())

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == "voice.session":
            notices.append(json.loads(packet.data))

    caller.room.on("data_received", on_data)
    await caller.join(s["url"], s["token"])  # no worker anywhere: nobody takes the dispatch
    try:
        await asyncio.to_thread(
            post_event, event_body("participant_joined", s["room_name"], "caller-alice")
        )
        first = await asyncio.to_thread(next_check, queue)
        before = await dispatches(on_livekit, s["room_name"])

        assert await asyncio.to_thread(run, first) == {"batchItemFailures": []}
        after = await dispatches(on_livekit, s["room_name"])
        assert len(after) == len(before) + 1
        assert set(after) == {"openagents-voice"}
        assert await asyncio.to_thread(next_check, queue) == {
            "session_id": s["session_id"],
            "attempt": 1,
        }

        last = {"session_id": s["session_id"], "attempt": MAX_DISPATCHES}
        assert await asyncio.to_thread(run, last) == {"batchItemFailures": []}
        await wait_until(lambda: bool(notices), 10, "the caller to be told")
        await asyncio.wait_for(gone.wait(), 10)
    finally:
        await caller.leave()
    assert notices[0]["end_reason"] == "no_agent_available"
    assert notices[0]["status"] == "failed"
    st = await asyncio.to_thread(status_of, control_plane, s["session_id"])
    assert (st["status"], st["end_reason"]) == ("failed", "no_agent_available")
    async with on_livekit.api() as lk:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[s["room_name"]]))
    assert not rooms.rooms


def test_an_answered_phone_call_is_watched_as_a_joined_caller_is(
    control_plane: ControlPlane, queue: str
) -> None:
    # LiveKit drops a phone room's dispatch when no worker is free at that moment: the call
    # needs the same check as a web caller, or the callee hears silence until the time limit.
    from voice.rooms import session_id_from_room

    room = "phone-_+15550123_Wd01Cx"
    attributes = {
        "sip.trunkPhoneNumber": "+15550100",  # the repo config's inbound number
        "sip.phoneNumber": "+15550123",
        "sip.callStatus": "active",
    }
    joined = sip_event_body("participant_joined", room, attributes)
    assert post_event(joined).body["action"] == "activated"
    assert post_event(joined).body["action"] == "unchanged"
    assert delayed(queue) == 1
    assert next_check(queue) == {"session_id": session_id_from_room(room), "attempt": 0}
