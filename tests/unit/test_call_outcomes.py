"""What a session report says went wrong in a call: agent errors and unanswered caller turns."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from livekit.agents import llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from worker.report import CallRecorder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def said(role: str, text: str, at: float) -> ConversationItemAddedEvent:
    item = llm.ChatMessage(role=role, content=[text], created_at=at)  # type: ignore[arg-type]
    return ConversationItemAddedEvent(item=item)


def recorder(clock: Clock) -> CallRecorder:
    return CallRecorder(
        session_id="s",
        room="r",
        job_id="j",
        agent_type="single_agent",
        answer_timeout=8.0,
        clock=clock,
    )


def test_a_turn_answered_in_time_is_fine_and_one_left_waiting_counts() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.on_item_added(said("assistant", "Hello!", at=999.0))  # the greeting answers no one
    clock.now = 1005.0
    rec.on_item_added(said("user", "Opening hours?", at=1002.0))
    rec.on_item_added(said("assistant", "Nine to five.", at=1006.5))
    clock.now = 1010.0
    rec.on_item_added(said("user", "Hello? Are you there?", at=1009.0))
    # Twelve seconds later the caller asks again: the first question went unanswered.
    clock.now = 1022.0
    rec.on_item_added(said("user", "Hello?", at=1021.0))
    clock.now = 1023.0
    report = rec.build_report(None)
    # The last turn ended a second before the call did: too soon to call it unanswered.
    assert report.unanswered_turns == 1


def test_an_answer_after_the_timeout_and_a_call_ending_unanswered_both_count() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.on_item_added(said("user", "Opening hours?", at=998.0))
    rec.on_item_added(said("assistant", "Nine to five.", at=1009.0))
    clock.now = 1020.0
    rec.on_item_added(said("user", "Thanks, and on Sunday?", at=1019.0))
    clock.now = 1040.0
    assert rec.build_report(None).unanswered_turns == 2


def test_only_errors_the_library_could_not_recover_from_count() -> None:
    rec = recorder(Clock())

    def error(recoverable: bool) -> Any:
        return SimpleNamespace(error=SimpleNamespace(recoverable=recoverable))

    rec.on_error(error(True))
    rec.on_error(error(False))
    assert rec.build_report(None).agent_errors == 1
