"""Customer webhooks: the signed event envelope, and the helpers that sign and verify it."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

from pydantic import BaseModel

SIGNATURE_HEADER = "Voice-Signature"
# A receiver refuses signatures older than this, so a captured request cannot be replayed later.
DEFAULT_TOLERANCE_SECONDS = 300
_EVENT_NAMESPACE = uuid.UUID("5b0f8a4e-3f7c-4c55-9a55-0d1c6f0e9a12")


class SignatureError(ValueError):
    """The Voice-Signature header is missing, malformed, stale, or does not match the body."""


def event_id(session_id: str, event_type: str) -> str:
    """One id per session and event type: every delivery and every re-emit of it share it."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{session_id}/{event_type}"))


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The Voice-Signature header value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raises SignatureError unless `header` signs the raw `body` with `secret`, recently."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header") from exc
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance")
    expected = sign(secret, body, t).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise SignatureError("signature does not match the body")


class TranscriptLine(BaseModel):
    role: str
    text: str
    started_at: str


class CallReport(BaseModel):
    """What `session.ended` / `session.failed` and GET /session/{id}/transcript tell about a call."""

    end_reason: str | None
    duration_seconds: float | None
    transcript: list[TranscriptLine]
    usage: dict[str, Any]
    turns: list[dict[str, Any]]
    recording_url: str | None = None


class WebhookEvent(BaseModel):
    """The body POSTed to `voice.realtime.webhooks.url`."""

    id: str
    type: str
    created_at: str
    # A session event's session, as GET /session/{id} shows it; None for an agent event.
    session: dict[str, Any] | None = None
    report: CallReport | None = None
    # agent.rolled_back: the allocation now in force (as GET .../traffic shows it).
    traffic: dict[str, Any] | None = None
