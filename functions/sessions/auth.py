"""API keys: generation, hashing, and constant-time verification of `X-API-Key`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from functions.domain.errors import Unauthorized
from functions.domain.models import ApiKeyRecord
from functions.sessions.ports import ApiKeyStorage
from functions.sessions.translate import translated

KEY_PREFIX = "vk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key_hash: str) -> str:
    return key_hash[:12]


class ApiKeyService:
    def __init__(self, store: ApiKeyStorage) -> None:
        self._store = store

    @translated
    def authenticate(self, presented: str | None) -> str:
        """The user id the key belongs to; 401 for a missing, unknown or revoked key."""
        if not presented:
            raise Unauthorized("missing X-API-Key header: send the API key you were given")
        digest = hash_key(presented)
        rec = self._store.get_by_hash(digest)
        # The lookup is by hash; the compare is constant-time so timing says nothing of the key.
        if rec is None or rec.revoked or not hmac.compare_digest(rec.key_hash, digest):
            raise Unauthorized("the X-API-Key is unknown or revoked")
        return rec.user_id

    @translated
    def create(self, user_id: str, key: str | None = None) -> tuple[str, ApiKeyRecord]:
        """Stores a key (a new random one unless given) for `user_id`; returns it once."""
        if not user_id or ":" in user_id or "," in user_id:
            raise ValueError("user id must be non-empty and contain neither ':' nor ','")
        key = key or KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        rec = ApiKeyRecord(
            key_id=key_id_of(digest), key_hash=digest, user_id=user_id, created_at=datetime.now(UTC)
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


def parse_seed(spec: str) -> list[tuple[str, str]]:
    """`key:user,key:user` (the `VOICE_API_KEYS` format) into (key, user) pairs."""
    pairs = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, user = part.partition(":")
        if not sep or not key or not user:
            raise ValueError("VOICE_API_KEYS must look like 'key:user,key:user'")
        pairs.append((key, user))
    return pairs
