"""Phone calls in the worker: answer detection, the in-call tools (hang up, transfer), DTMF as text."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from livekit import api, rtc
from livekit.agents import AgentSession, RunContext, get_job_context, llm

from voice.config.schema import VoiceConfig
from voice.metadata import DispatchMetadata


class PhoneCallData(Protocol):
    """What the phone tools read of a call's data (the agents' `CallData` has it)."""

    @property
    def config(self) -> VoiceConfig: ...
    @property
    def dispatch(self) -> DispatchMetadata: ...


CALL_STATUS = "sip.callStatus"
SIP_KIND = rtc.ParticipantKind.PARTICIPANT_KIND_SIP


def phone_participant(room: rtc.Room) -> rtc.RemoteParticipant | None:
    return next((p for p in room.remote_participants.values() if p.kind == SIP_KIND), None)


async def wait_until_answered(room: rtc.Room, phone: rtc.RemoteParticipant) -> bool:
    """Waits for the callee to pick up; False when the phone leaves first (busy, no answer)."""
    answered = asyncio.Event()
    gone = asyncio.Event()

    def on_attributes(_changed: dict[str, str], who: rtc.Participant) -> None:
        if who.identity == phone.identity and who.attributes.get(CALL_STATUS) == "active":
            answered.set()

    def on_left(who: rtc.RemoteParticipant) -> None:
        if who.identity == phone.identity:
            gone.set()

    room.on("participant_attributes_changed", on_attributes)
    room.on("participant_disconnected", on_left)
    try:
        if phone.attributes.get(CALL_STATUS) == "active":
            return True
        waits = [asyncio.ensure_future(answered.wait()), asyncio.ensure_future(gone.wait())]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return answered.is_set()
    finally:
        room.off("participant_attributes_changed", on_attributes)
        room.off("participant_disconnected", on_left)


async def callee_spoke_within(session: AgentSession[Any], seconds: float) -> bool:
    """True once the callee starts speaking, False after `seconds` of silence.

    People answer with "Hello?": greeting over them sounds like a robot, so the agent waits for
    that (and replies to it as a turn) or, if the line stays quiet, speaks first.
    """
    spoke = asyncio.Event()

    def on_state(ev: object) -> None:
        if getattr(ev, "new_state", None) == "speaking":
            spoke.set()

    session.on("user_state_changed", on_state)
    try:
        await asyncio.wait_for(spoke.wait(), seconds)
        return True
    except TimeoutError:
        return False
    finally:
        session.off("user_state_changed", on_state)


def forward_dtmf(room: rtc.Room, session: AgentSession[Any]) -> None:
    """Each key the caller presses reaches the agent as a line of text, like a short turn."""

    def on_dtmf(ev: rtc.SipDTMF) -> None:
        session.interrupt()
        session.generate_reply(user_input=f"(The caller pressed the phone key '{ev.digit}'.)")

    room.on("sip_dtmf_received", on_dtmf)


async def end_call(context: RunContext) -> None:
    """Hang up the phone call. Use only when the conversation is over and you have said goodbye."""
    await context.wait_for_playout()
    job = get_job_context()
    await job.delete_room()


def _transfer_tool(number: str) -> llm.FunctionTool:
    async def transfer_call(context: RunContext) -> str:
        job = get_job_context()
        phone = phone_participant(job.room)
        if phone is None:
            return "The caller is no longer on the line."
        await context.wait_for_playout()
        await job.api.sip.transfer_sip_participant(
            api.TransferSIPParticipantRequest(
                room_name=job.room.name,
                participant_identity=phone.identity,
                transfer_to=f"tel:{number}",
            )
        )
        return "The caller has been transferred."

    return llm.function_tool(
        transfer_call,
        name="transfer_call",
        description=(
            "Transfer the caller to a human colleague. Use when the caller asks for a person or "
            "you cannot help. Tell the caller you are transferring them before calling this."
        ),
    )


def phone_tools(data: PhoneCallData) -> list[llm.FunctionTool]:
    """The tools every agent of a phone call has: hang up, and transfer when a number is set."""
    if data.dispatch.phone is None:
        return []
    tools = [llm.function_tool(end_call, name="end_call")]
    transfer_to = data.config.realtime.telephony.transfer_to
    if transfer_to:
        tools.append(_transfer_tool(transfer_to))
    return tools
