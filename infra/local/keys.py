"""API keys on the local stack: the dev key kept across restarts, and seeding the emulator's table."""

from __future__ import annotations

import secrets

from infra.local.aws import LOCAL_TABLE, local_client
from infra.local.paths import STATE_DIR

DEV_KEY_FILE = STATE_DIR / "dev-api-key"


def dev_api_key() -> str:
    """A random dev key, kept in .local/ so it survives restarts of the local stack."""
    if DEV_KEY_FILE.exists():
        return DEV_KEY_FILE.read_text().strip()
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = "vk_dev_" + secrets.token_urlsafe(18)
    DEV_KEY_FILE.write_text(key + "\n")
    DEV_KEY_FILE.chmod(0o600)
    return key


def seed_api_keys(endpoint: str, spec: str | None) -> list[tuple[str, str]]:
    """Stores the keys from VOICE_API_KEYS (`key:user,key:user:account,...`), or one dev key for
    user `dev`; returns the (key, user) pairs."""
    from functions.sessions.auth import ApiKeyService, parse_seed
    from functions.store.dynamo import ApiKeyStore

    seeds = parse_seed(spec) if spec else [(dev_api_key(), "dev", None)]
    keys = ApiKeyService(ApiKeyStore(local_client("dynamodb", endpoint), LOCAL_TABLE))
    for key, user, account in seeds:
        keys.create(user, key, account)
    return [(key, user) for key, user, _ in seeds]
