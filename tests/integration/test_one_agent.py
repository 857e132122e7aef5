"""One agent per call: two of our agents dispatched into one room (a dispatch racing a
re-dispatch, or an old agent resuming beside a new one after a LiveKit node died) settle to one,
with a real LiveKit server and worker; the rule itself in `leaves_for`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from livekit import api, rtc

from tests.support.dispatch import agent_in_room
from tests.support.livekit import LiveKitServer
from tests.support.worker import AGENT_NAME, dispatch
from voice.metadata import DispatchMetadata
from worker.one_agent import CONVERSING_ATTRIBUTE, leaves_for

AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT


@dataclass
class Other:
    identity: str
    kind: Any = AGENT
    attributes: dict[str, str] = field(default_factory=dict)


def conversing(identity: str) -> Other:
    return Other(identity, attributes={CONVERSING_ATTRIBUTE: "1"})


@pytest.mark.parametrize(
    ("mine", "identity", "other", "leaves"),
    [
        (False, "agent-A", conversing("agent-B"), True),  # the other holds the conversation
        (True, "agent-B", Other("agent-A"), False),  # we hold it: the other leaves
        (False, "agent-B", Other("agent-A"), True),  # equals: the greater identity leaves
        (False, "agent-A", Other("agent-B"), False),
        (True, "agent-B", conversing("agent-A"), True),
        (True, "agent-A", conversing("agent-B"), False),
        (
            False,
            "agent-A",
            Other("caller", kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD),
            False,
        ),
        (False, "agent-A", Other("agent-A"), False),  # ourselves
    ],
)
def test_the_rule_leaves_exactly_one_of_two_agents(
    mine: bool, identity: str, other: Other, leaves: bool
) -> None:
    assert leaves_for(mine, identity, other) is leaves  # type: ignore[arg-type]


async def agents(lk: api.LiveKitAPI, room: str) -> list[str]:
    resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return [p.identity for p in resp.participants if p.kind == api.ParticipantInfo.Kind.AGENT]


@pytest.mark.livekit
async def test_a_second_agent_dispatched_into_a_call_settles_to_one(
    livekit: LiveKitServer, start_worker: Any
) -> None:
    worker = start_worker("start", worker_yaml="max_jobs: 2")
    await worker.wait_for_log("registered worker")
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        session_id, room = await dispatch(lk)
        assert await agent_in_room(lk, room), worker.logs()[-3000:]
        [first] = await agents(lk, room)
        metadata = DispatchMetadata(
            session_id=session_id, agent_type="smart_router", initial_greeting=False
        )
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=AGENT_NAME, room=room, metadata=metadata.to_json()
            )
        )
        await worker.wait_for_log("another agent serves this call: this one leaves", timeout=60)
        deadline = time.monotonic() + 30
        while len(present := await agents(lk, room)) != 1:
            assert time.monotonic() < deadline, f"agents in the room: {present}"
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # and it stays one: the agent that stayed does not leave too
        assert len(await agents(lk, room)) == 1, worker.logs()[-3000:]
    # The one that left named the one it left to: the one still there.
    left_to = [
        json.loads(line)["other"]
        for line in worker.logs().splitlines()
        if "this one leaves" in line and line.startswith("{")
    ]
    assert left_to == present, (left_to, present, first)
    # The one that left wrote no report (the call's report is the staying agent's).
    written = [line for line in worker.logs().splitlines() if "session report written" in line]
    assert not [line for line in written if "duplicate_agent" in line], written
