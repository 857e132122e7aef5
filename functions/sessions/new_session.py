"""The steps of creating a session: check the request, then build its dispatch, record and token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.domain.agents import ChosenVersion
from functions.domain.errors import ConfigUnavailable, InvalidRequest
from functions.domain.models import (
    CallOverrides,
    JoinTokenRequest,
    SessionRecord,
    SessionStatus,
)
from voice.config import LoadedConfig
from voice.config.schema import AgentType, RealtimeSettings, VoiceConfig, VoiceSettings
from voice.metadata import DispatchMetadata
from voice.rooms import room_name_for


@dataclass(frozen=True)
class NewSession:
    agent_type: AgentType | None = None
    initial_greeting: bool | None = None
    voice_profile: str | None = None
    metadata: dict[str, Any] | None = None
    instructions: str | None = None
    greeting: str | None = None
    variables: dict[str, str] | None = None
    language: str | None = None
    record: bool | None = None
    agent_id: str | None = None
    agent_version: int | None = None
    end_user_id: str | None = None


def caller_identity(user_id: str) -> str:
    return f"caller-{user_id}"


def voice_for(config: VoiceConfig, chosen: ChosenVersion | None) -> VoiceSettings:
    """The settings a session is checked and dispatched against: its agent version's, if any."""
    return (config if chosen is None else chosen.spec.applied_to(config)).voice


def require_enabled(voice: VoiceSettings) -> RealtimeSettings:
    if not voice.realtime.enabled:
        raise ConfigUnavailable(
            "real-time voice is disabled in the config (voice.realtime.enabled = false)"
        )
    return voice.realtime


def checked_metadata(req: NewSession, voice: VoiceSettings) -> dict[str, Any]:
    """The request's metadata, once the profile is known and the metadata fits the cap."""
    if req.voice_profile is not None and req.voice_profile not in voice.voice_profiles:
        raise InvalidRequest(
            f"voice_profile: '{req.voice_profile}' is not a configured profile; "
            f"use one of {sorted(voice.voice_profiles)}"
        )
    metadata = req.metadata or {}
    size = len(json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
    cap = voice.realtime.limits.max_metadata_bytes
    if size > cap:
        raise InvalidRequest(
            f"metadata: {size} bytes of JSON is over the {cap}-byte cap; send less"
        )
    return metadata


def checked_overrides(req: NewSession, realtime: RealtimeSettings) -> CallOverrides:
    """The request's per-call choices, refused by name when the config does not allow them."""
    asked = {
        "instructions": req.instructions,
        "greeting": req.greeting,
        "variables": req.variables,
        "language": req.language,
    }
    sent = [name for name, value in asked.items() if value is not None]
    if sent and not realtime.agent.allow_overrides:
        raise InvalidRequest(
            f"{sent[0]}: per-call overrides are turned off in this deployment's config "
            "(voice.realtime.agent.allow_overrides = false); leave it out"
        )
    if req.record and not realtime.recording.enabled:
        raise InvalidRequest(
            "record: recording is turned off in this deployment's config "
            "(voice.realtime.recording.enabled = false); leave it out or send false"
        )
    return CallOverrides(
        instructions=req.instructions,
        greeting=req.greeting,
        variables=req.variables or {},
        language=req.language,
        record=bool(req.record),
    )


def dispatch_for(
    session_id: str,
    req: NewSession,
    realtime: RealtimeSettings,
    metadata: dict[str, Any],
    overrides: CallOverrides | None = None,
    chosen: ChosenVersion | None = None,
) -> DispatchMetadata:
    """What the agent is told: the request's choices, else the defaults of its agent version
    (or of the config file's agent)."""
    return DispatchMetadata(
        session_id=session_id,
        agent_type=req.agent_type or realtime.agent.type,
        initial_greeting=(
            realtime.agent.initial_greeting
            if req.initial_greeting is None
            else req.initial_greeting
        ),
        voice_profile=req.voice_profile,
        metadata=metadata,
        **(overrides or CallOverrides()).model_dump(),
        agent_id=None if chosen is None else chosen.agent_id,
        agent_version=None if chosen is None else chosen.version,
    )


def redispatch_for(rec: SessionRecord, *, greet: bool) -> DispatchMetadata:
    """What an agent sent into a live session again is told: everything its first dispatch
    carried (per-call overrides and the phone leg included), greeting only if `greet`."""
    return DispatchMetadata(
        session_id=rec.session_id,
        agent_type=rec.agent_type,
        initial_greeting=greet,
        voice_profile=rec.voice_profile,
        metadata=rec.metadata,
        phone=rec.phone,
        agent_id=rec.agent_id,
        agent_version=rec.agent_version,
        **rec.overrides.model_dump(),
    )


def pending_record(
    user_id: str,
    dispatch: DispatchMetadata,
    loaded: LoadedConfig,
    now: datetime,
    end_user_id: str | None = None,
    account_id: str | None = None,
) -> SessionRecord:
    """A new session, pending its caller; counted against `account_id` (default: the user's
    own account) and, with `end_user_id`, against that end user instead of the key's user."""
    limits = loaded.config.voice.realtime.limits
    token_expires_at = now + timedelta(hours=limits.token_ttl_hours)
    return SessionRecord(
        session_id=dispatch.session_id,
        user_id=user_id,
        room_name=room_name_for(user_id, dispatch.session_id),
        agent_type=dispatch.agent_type,
        initial_greeting=dispatch.initial_greeting,
        voice_profile=dispatch.voice_profile,
        metadata=dispatch.metadata,
        status=SessionStatus.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=limits.max_session_duration),
        token_expires_at=token_expires_at,
        # No later than the token: a join needs a token that still works.
        join_by=min(token_expires_at, now + timedelta(seconds=limits.join_timeout)),
        config_version=loaded.version,
        max_session_duration=limits.max_session_duration,
        overrides=CallOverrides(
            instructions=dispatch.instructions,
            greeting=dispatch.greeting,
            variables=dispatch.variables,
            language=dispatch.language,
            record=dispatch.record,
        ),
        agent_id=dispatch.agent_id,
        agent_version=dispatch.agent_version,
        end_user_id=end_user_id,
        account_id=account_id or user_id,
    )


def join_token_request(
    rec: SessionRecord, dispatch: DispatchMetadata, realtime: RealtimeSettings
) -> JoinTokenRequest:
    return JoinTokenRequest(
        room_name=rec.room_name,
        identity=caller_identity(rec.user_id),
        display_name=rec.user_id,
        ttl=timedelta(hours=realtime.limits.token_ttl_hours),
        empty_timeout=realtime.livekit.room_empty_timeout,
        max_participants=realtime.livekit.max_participants,
        agent_name=realtime.worker.agent_name,
        dispatch_metadata=dispatch.to_json(),
    )
