"""Turns a job's dispatch metadata into a usable call plan, falling back to config defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from voice.config.schema import AGENT_TYPES, VoiceConfig
from voice.metadata import DispatchMetadata
from voice.rooms import session_id_from_room


@dataclass(frozen=True)
class CallPlan:
    dispatch: DispatchMetadata
    # Each entry names what was wrong with the metadata and what was used instead.
    warnings: list[str] = field(default_factory=list)


def plan_call(raw: str | None, config: VoiceConfig, *, room: str, job_id: str) -> CallPlan:
    """Never raises: unusable metadata becomes the config's defaults plus a warning."""
    agent = config.realtime.agent
    defaults: dict[str, Any] = {
        "session_id": session_id_from_room(room) or job_id,
        "agent_type": agent.type,
        "initial_greeting": agent.initial_greeting,
        "voice_profile": agent.voice_profile,
        "metadata": {},
    }
    warnings: list[str] = []
    try:
        dispatch = DispatchMetadata.parse(raw)
        data = dispatch.model_dump()
        # An inbound phone call's rule carries no session id: the room names the session.
        data["session_id"] = data["session_id"] or defaults["session_id"]
    except ValueError as exc:
        warnings.append(f"{exc}; using what could be read and config defaults for the rest")
        data = _salvage(raw, defaults, warnings)

    if data.get("agent_type") not in AGENT_TYPES:
        warnings.append(
            f"unknown agent_type {data.get('agent_type')!r}; using config default {agent.type!r}"
        )
        data["agent_type"] = agent.type
    profile = data.get("voice_profile")
    if profile is None:
        data["voice_profile"] = agent.voice_profile
    elif profile not in config.voice.voice_profiles:
        warnings.append(
            f"unknown voice_profile {profile!r}; using config default {agent.voice_profile!r}"
        )
        data["voice_profile"] = agent.voice_profile
    return CallPlan(dispatch=DispatchMetadata.model_validate(data), warnings=warnings)


def _salvage(raw: str | None, defaults: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Keeps each well-typed field of a partly valid object; the rest come from `defaults`."""
    data = dict(defaults)
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return data
    if not isinstance(parsed, dict):
        return data
    if isinstance(parsed.get("session_id"), str) and parsed["session_id"]:
        data["session_id"] = parsed["session_id"]
    if isinstance(parsed.get("initial_greeting"), bool):
        data["initial_greeting"] = parsed["initial_greeting"]
    if isinstance(parsed.get("voice_profile"), str):
        data["voice_profile"] = parsed["voice_profile"]
    if isinstance(parsed.get("metadata"), dict):
        data["metadata"] = parsed["metadata"]
    if "agent_type" in parsed:
        # Checked against the known types by the caller, which names a bad value.
        data["agent_type"] = parsed["agent_type"]
    return data
