"""Room naming: `voice-<user>-<session_id>`, so the session id is recoverable from a room name."""

from __future__ import annotations

import re
import uuid

ROOM_PREFIX = "voice-"
# Inbound phone calls get rooms from LiveKit's dispatch rule (`phone-_<caller>_<random>`): their
# session id is derived from the room name, so the webhook and the worker agree without talking.
PHONE_ROOM_PREFIX = "phone-"
_PHONE_NAMESPACE = uuid.UUID("6f1d3c52-8a1e-4f0b-9a57-2c3e0d6b7a41")
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SESSION_ID_LEN = 36  # str(uuid4())
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def room_name_for(user_id: str, session_id: str) -> str:
    slug = _UNSAFE.sub("_", user_id.lower()).strip("_")[:32] or "user"
    return f"{ROOM_PREFIX}{slug}-{session_id}"


def session_id_from_room(room_name: str) -> str | None:
    if room_name.startswith(PHONE_ROOM_PREFIX) and len(room_name) > len(PHONE_ROOM_PREFIX):
        return str(uuid.uuid5(_PHONE_NAMESPACE, room_name))
    if not room_name.startswith(ROOM_PREFIX) or len(room_name) < _SESSION_ID_LEN + 7:
        return None
    candidate = room_name[-_SESSION_ID_LEN:]
    return candidate if _SESSION_ID.fullmatch(candidate) else None
