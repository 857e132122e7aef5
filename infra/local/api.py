"""`make api`: the control plane alone on 127.0.0.1:8000, with an embedded AWS emulator."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.aws import bootstrap, local_aws_env, start_moto
from infra.local.keys import seed_api_keys
from infra.local.paths import CONFIG_FILE, STATE_DIR


def configure_local_env(endpoint: str) -> None:
    for var, value in local_aws_env(endpoint).items():
        os.environ.setdefault(var, value)
    os.environ.setdefault("ENVIRONMENT", "local")
    os.environ.setdefault("LIVEKIT_URL", "ws://127.0.0.1:7880")
    os.environ.setdefault("LIVEKIT_API_KEY", DEV_LIVEKIT_KEY)
    os.environ.setdefault("LIVEKIT_API_SECRET", DEV_LIVEKIT_SECRET)
    os.environ.setdefault("VOICE_CONFIG_URI", str(config_without_admission()))


def config_without_admission() -> Path:
    """The shipped config with admission off: no worker runs here to report free slots, and
    every create would be refused with fleet_at_capacity."""
    data = yaml.safe_load(CONFIG_FILE.read_text())
    data["voice"]["realtime"].setdefault("admission", {})["enabled"] = False
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / "voice_config.api.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def admission_note() -> str:
    """What admission will do with the config this API serves (it may be the user's own)."""
    from voice.config import get_config

    if not get_config().config.voice.realtime.admission.enabled:
        return "admission off"
    return (
        "admission ON: with no worker heartbeating into this emulator every create answers "
        "503 fleet_at_capacity; set voice.realtime.admission.enabled: false or run a worker"
    )


def main() -> int:
    import uvicorn

    host = os.environ.get("API_HOST", "127.0.0.1")
    port = int(os.environ.get("API_PORT", "8000"))
    moto, endpoint = start_moto(int(os.environ.get("MOTO_PORT", "0")))
    configure_local_env(endpoint)
    bootstrap(endpoint)
    pairs = seed_api_keys(endpoint, os.environ.get("VOICE_API_KEYS"))
    base = f"http://{host}:{port}/voice/realtime"
    print(f"AWS emulator: {endpoint}")
    print(f"LiveKit:      {os.environ['LIVEKIT_URL']}")
    print(f"Config:       {os.environ['VOICE_CONFIG_URI']}  ({admission_note()})")
    print(f"API:          {base}  (docs: {base}/docs)")
    for key, user in pairs:
        print(f"API key:      {key}  (user {user})")
    print(
        f"Try:          curl -s -X POST {base}/session -H 'X-API-Key: {pairs[0][0]}' "
        "-H 'Content-Type: application/json' -d '{\"agent_type\": \"single_agent\"}'",
        flush=True,
    )
    try:
        uvicorn.run("infra.local.lambda_asgi:app", host=host, port=port, log_level="info")
    finally:
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
