"""Dispatches the voice agent into a fresh LiveKit room and watches for it to join."""

from __future__ import annotations

import asyncio
import time
import uuid

from livekit import api

from voice.metadata import DispatchMetadata

AGENT_NAME = "openagents-voice"


async def dispatch_call(
    lk: api.LiveKitAPI, *, greeting: bool = False, prefix: str = "voice-it", agent: str = AGENT_NAME
) -> tuple[str, str]:
    """Creates a room and dispatches the agent into it; returns (session_id, room)."""
    session_id = str(uuid.uuid4())
    room = f"{prefix}-{session_id}"
    await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=120))
    metadata = DispatchMetadata(
        session_id=session_id, agent_type="smart_router", initial_greeting=greeting
    )
    await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent, room=room, metadata=metadata.to_json())
    )
    return session_id, room


async def agent_in_room(lk: api.LiveKitAPI, room: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        if any(p.kind == api.ParticipantInfo.Kind.AGENT for p in resp.participants):
            return True
        await asyncio.sleep(0.2)
    return False
