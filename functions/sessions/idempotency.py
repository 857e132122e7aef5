"""`Idempotency-Key` rules: which keys are valid, what counts as the same body, what a replay is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
)
from functions.domain.models import IdempotencyClaim, SessionRecord
from functions.sessions.new_session import NewSession
from functions.sessions.ports import SessionStorage
from functions.store.errors import Contended

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long a key keeps returning the session it created.
KEY_LIFETIME = timedelta(hours=24)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_problem(key: str) -> str | None:
    if not key:
        return "is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"is {len(key)} characters long"
    if not (key.isascii() and key.isprintable()):
        return "holds characters that are not printable ASCII"
    return None


@dataclass(frozen=True)
class KeyedCreate:
    """A create that carries an `Idempotency-Key`: the key and the body, both as hashes."""

    user_id: str
    key_hash: str
    request_hash: str

    @classmethod
    def of(cls, user_id: str, key: str, req: NewSession | Any) -> KeyedCreate:
        """`req` is the parsed body: a `NewSession`, or any dataclass of a create (a call)."""
        problem = _key_problem(key)
        if problem:
            raise InvalidRequest(
                f"{HEADER}: {problem}; send 1 to {MAX_KEY_LENGTH} printable ASCII characters "
                "(a UUID is a good key)"
            )
        # The parsed body, so key order and whitespace do not make two bodies different; its
        # kind too, so one key cannot replay a session as a phone call or the other way round.
        parsed = {"kind": type(req).__name__, **asdict(req)}
        body = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
        return cls(user_id=user_id, key_hash=_sha256(key), request_hash=_sha256(body))

    def claim(self, rec: SessionRecord, token: str, url: str) -> IdempotencyClaim:
        return IdempotencyClaim(
            user_id=self.user_id,
            key_hash=self.key_hash,
            request_hash=self.request_hash,
            session_id=rec.session_id,
            token=token,
            url=url,
            created_at=rec.created_at,
            expires_at=rec.created_at + KEY_LIFETIME,
        )

    def check_replay_of(self, claim: IdempotencyClaim) -> None:
        """A key replays only the body it was first sent with."""
        if claim.request_hash != self.request_hash:
            raise IdempotencyKeyReused(
                f"{HEADER}: this key was used in the last 24 h with a different body; "
                "send the same body to get that session again, or use a new key for a new session"
            )


def create_claimed(
    store: SessionStorage,
    rec: SessionRecord,
    max_live: int,
    keyed: KeyedCreate | None,
    *,
    token: str = "",
    url: str = "",
    max_account: int | None = None,
) -> IdempotencyClaim | None:
    """Writes the session (and the key's claim, if any) in one transaction.

    None when written; the claim of the create that holds the key when another one got there
    first. A create with the same key still being written is a 409 the caller retries.
    """
    claim = None if keyed is None else keyed.claim(rec, token, url)
    try:
        return store.create(rec, max_live, claim, max_account=max_account)
    except Contended as exc:
        if keyed is None:
            raise
        raise IdempotencyKeyInUse(
            f"{HEADER}: a create with this key is being written right now; "
            "retry after the Retry-After seconds to get its session"
        ) from exc


def replayed(
    store: SessionStorage, keyed: KeyedCreate, held: IdempotencyClaim, now: datetime
) -> SessionRecord:
    """The session an earlier create with the same key and body made, as it is now."""
    keyed.check_replay_of(held)
    rec = store.get(held.session_id, now)
    if rec is None:
        raise NotFound(f"{HEADER}: the session this key created no longer exists; use a new key")
    return rec
