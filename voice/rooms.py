"""Room naming: `voice-<user>-<session_id>`, so the session id is recoverable from a room name."""

from __future__ import annotations

import re

ROOM_PREFIX = "voice-"
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SESSION_ID_LEN = 36  # str(uuid4())
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def room_name_for(user_id: str, session_id: str) -> str:
    slug = _UNSAFE.sub("_", user_id.lower()).strip("_")[:32] or "user"
    return f"{ROOM_PREFIX}{slug}-{session_id}"


def session_id_from_room(room_name: str) -> str | None:
    if not room_name.startswith(ROOM_PREFIX) or len(room_name) < _SESSION_ID_LEN + 7:
        return None
    candidate = room_name[-_SESSION_ID_LEN:]
    return candidate if _SESSION_ID.fullmatch(candidate) else None
