"""API keys: generation, hashing, and constant-time verification of `X-API-Key`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from functions.domain.errors import Unauthorized
from functions.domain.models import ApiKeyRecord, Caller
from functions.sessions.ports import ApiKeyStorage
from functions.sessions.translate import translated

KEY_PREFIX = "vk_"
# An account id is part of table keys (`ACCOUNT#<id>`, `ENDUSER#<id>/…`): no separators in it.
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
ACCOUNT_ID_RULE = "1 to 64 letters, digits or _ . @ -"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key_hash: str) -> str:
    return key_hash[:12]


class ApiKeyService:
    def __init__(self, store: ApiKeyStorage) -> None:
        self._store = store

    def authenticate(self, presented: str | None) -> str:
        """The user id the key belongs to; 401 for a missing, unknown or revoked key."""
        return self.caller(presented).user_id

    @translated
    def caller(self, presented: str | None) -> Caller:
        """The user and account the key belongs to (a key made before accounts: the user's
        own); 401 for a missing, unknown or revoked key."""
        if not presented:
            raise Unauthorized("missing X-API-Key header: send the API key you were given")
        digest = hash_key(presented)
        rec = self._store.get_by_hash(digest)
        # The lookup is by hash; the compare is constant-time so timing says nothing of the key.
        if rec is None or rec.revoked or not hmac.compare_digest(rec.key_hash, digest):
            raise Unauthorized("the X-API-Key is unknown or revoked")
        return rec.caller

    @translated
    def create(
        self, user_id: str, key: str | None = None, account_id: str | None = None
    ) -> tuple[str, ApiKeyRecord]:
        """Stores a key (a new random one unless given) for `user_id`, in `account_id` (none:
        the user is its own account); returns it once."""
        if not user_id or ":" in user_id or "," in user_id:
            raise ValueError("user id must be non-empty and contain neither ':' nor ','")
        if account_id is not None and not ACCOUNT_ID.fullmatch(account_id):
            raise ValueError(f"account id must be {ACCOUNT_ID_RULE}")
        key = key or KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        rec = ApiKeyRecord(
            key_id=key_id_of(digest),
            key_hash=digest,
            user_id=user_id,
            created_at=datetime.now(UTC),
            account_id=account_id,
        )
        self._store.put(rec)
        return key, rec

    @translated
    def revoke(self, key_or_id: str) -> bool:
        for rec in self._store.list():
            if rec.key_id == key_or_id or hmac.compare_digest(rec.key_hash, hash_key(key_or_id)):
                return self._store.revoke(rec.key_hash)
        return False

    @translated
    def list(self) -> list[ApiKeyRecord]:
        return self._store.list()


def parse_seed(spec: str) -> list[tuple[str, str, str | None]]:
    """`key:user,key:user:account` (the `VOICE_API_KEYS` format) into (key, user, account)."""
    seeds: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, rest = part.partition(":")
        user, _, account = rest.partition(":")
        if not sep or not key or not user:
            raise ValueError("VOICE_API_KEYS must look like 'key:user,key:user:account'")
        seeds.append((key, user, account or None))
    return seeds
