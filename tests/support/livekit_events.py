"""Builds LiveKit webhook events signed exactly as livekit-server signs them."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import timedelta

from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from tests.support.lambda_events import invoke

HOOK = "/voice/realtime/livekit/webhook"


def event_body(
    kind: str, room: str, identity: str = "", agent: bool = False, at: float | None = None
) -> str:
    created = int(time.time() if at is None else at)
    ev = WebhookEvent(event=kind, room=Room(name=room), created_at=created, id=f"EV_{created}")
    if identity:
        ev.participant.CopyFrom(
            ParticipantInfo(
                identity=identity,
                kind=ParticipantInfo.Kind.AGENT if agent else ParticipantInfo.Kind.STANDARD,
            )
        )
    return MessageToJson(ev)


def sign(body: str, secret: str = DEV_LIVEKIT_SECRET, ttl: timedelta = timedelta(minutes=5)) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(DEV_LIVEKIT_KEY, secret).with_sha256(digest).with_ttl(ttl).to_jwt()


def post_event(body: str, token: str | None = None):
    headers = {"content-type": "application/webhook+json"}
    headers["authorization"] = token if token is not None else sign(body)
    return invoke("POST", HOOK, headers=headers, body=body)


def sip_event_body(
    kind: str, room: str, attributes: dict[str, str], disconnect_reason: str = ""
) -> str:
    """A webhook about a phone's SIP participant, with the `sip.*` attributes LiveKit gives it."""
    created = int(time.time())
    ev = WebhookEvent(event=kind, room=Room(name=room), created_at=created, id=f"EV_{created}")
    ev.participant.CopyFrom(
        ParticipantInfo(
            identity=f"sip_{attributes.get('sip.phoneNumber', 'phone')}",
            kind=ParticipantInfo.Kind.SIP,
            attributes=attributes,
            disconnect_reason=api.DisconnectReason.Value(disconnect_reason or "UNKNOWN_REASON"),
        )
    )
    return MessageToJson(ev)
