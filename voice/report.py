"""The session report contract: what the worker writes at the end of a call and the API reads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


def report_key(session_id: str) -> str:
    """Where a session's report lives in the reports bucket (or under the reports folder)."""
    return f"reports/{session_id}.json"


def recording_key(session_id: str) -> str:
    """Where a recorded call (stereo Ogg/Opus: caller left, agent right) lives: apart from the
    reports, so the bucket's lifecycle keeps each for its own number of days."""
    return f"recordings/{session_id}.ogg"


class TranscriptEntry(BaseModel):
    role: Literal["user", "assistant"]
    text: str
    at: str


class TurnLatency(BaseModel):
    """One agent reply; values in milliseconds, None when the stage did not happen."""

    at: str
    end_of_utterance_delay_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None
    end_to_end_ms: float | None = None


class Usage(BaseModel):
    stt_audio_seconds: float = 0.0
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    tts_characters: int = 0


class SessionReport(BaseModel):
    session_id: str
    room: str
    job_id: str
    agent_type: str
    started_at: str
    ended_at: str
    duration_s: float
    transcript: list[TranscriptEntry]
    turns: list[TurnLatency]
    usage: Usage
    config_version: str | None = None
    end_reason: str | None = None
    # The recording's key in the reports bucket, when the call was recorded.
    recording_key: str | None = None
    # The agent version the call ran; None for the config file's agent.
    agent_id: str | None = None
    agent_version: int | None = None
    # Provider errors the library could not recover from (the caller heard an apology, or nothing).
    agent_errors: int = 0
    # Caller turns the agent did not answer within voice.realtime.rollout.answer_timeout_seconds.
    unanswered_turns: int = 0
