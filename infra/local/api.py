"""`make api`: the control plane alone on 127.0.0.1:8000, with an embedded AWS emulator."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from infra.local.aws import ROOT, bootstrap, local_aws_env, start_moto

DEV_KEY_FILE = ROOT / ".local" / "dev-api-key"


def dev_api_key() -> str:
    """A random dev key, kept in .local/ so it survives restarts of the local stack."""
    if DEV_KEY_FILE.exists():
        return DEV_KEY_FILE.read_text().strip()
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = "vk_dev_" + secrets.token_urlsafe(18)
    DEV_KEY_FILE.write_text(key + "\n")
    DEV_KEY_FILE.chmod(0o600)
    return key


def seed_api_keys(spec: str | None) -> list[tuple[str, str]]:
    """Stores the keys from VOICE_API_KEYS (`key:user,...`), or one dev key for user `dev`."""
    from functions.sessions.auth import parse_seed
    from functions.wiring import get_container

    pairs = parse_seed(spec) if spec else [(dev_api_key(), "dev")]
    keys = get_container().keys
    for key, user in pairs:
        keys.create(user, key)
    return pairs


def configure_local_env(endpoint: str) -> None:
    for var, value in local_aws_env(endpoint).items():
        os.environ.setdefault(var, value)
    os.environ.setdefault("ENVIRONMENT", "local")
    os.environ.setdefault("LIVEKIT_URL", "ws://127.0.0.1:7880")
    os.environ.setdefault("LIVEKIT_API_KEY", "devkey")
    os.environ.setdefault("LIVEKIT_API_SECRET", "secret")
    os.environ.setdefault("VOICE_CONFIG_URI", str(Path(ROOT, "config", "voice_config.yaml")))


def main() -> int:
    import uvicorn

    host = os.environ.get("API_HOST", "127.0.0.1")
    port = int(os.environ.get("API_PORT", "8000"))
    moto, endpoint = start_moto(int(os.environ.get("MOTO_PORT", "0")))
    configure_local_env(endpoint)
    bootstrap(endpoint)
    pairs = seed_api_keys(os.environ.get("VOICE_API_KEYS"))
    base = f"http://{host}:{port}/voice/realtime"
    print(f"AWS emulator: {endpoint}")
    print(f"LiveKit:      {os.environ['LIVEKIT_URL']}")
    print(f"API:          {base}  (docs: http://{host}:{port}/docs)")
    for key, user in pairs:
        print(f"API key:      {key}  (user {user})")
    print(
        f"Try:          curl -s -X POST {base}/session -H 'X-API-Key: {pairs[0][0]}' "
        "-H 'Content-Type: application/json' -d '{\"agent_type\": \"single_agent\"}'",
        flush=True,
    )
    try:
        uvicorn.run("functions.api.app:app", host=host, port=port, log_level="info")
    finally:
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
