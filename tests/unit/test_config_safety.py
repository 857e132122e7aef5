"""Config that would silently break calls: each such setting works, or its error names the key
(or variable), the source, and what is allowed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from voice.config import ConfigCache, ConfigError, parse_config
from worker.pipeline import build_session, resolve_profile
from worker.settings import WorkerEnv

ENV = WorkerEnv(
    livekit_url="ws://127.0.0.1:7880",
    livekit_api_key=DEV_LIVEKIT_KEY,
    livekit_api_secret=DEV_LIVEKIT_SECRET,
    openai_api_key="sk-test",
    openai_base_url="http://127.0.0.1:9999/v1",
)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "pushed.yaml", env={})
    return str(raised.value)


async def test_turn_detection_disabled_ends_turns_on_silence_not_by_hand() -> None:
    config = parse_config(
        "voice:\n  realtime:\n    turn_detection: {enabled: false, mode: stt}\n", "t", env={}
    )
    session = build_session(config, profile=resolve_profile(config, None), env=ENV, vad_model=None)
    # "manual" would wait for the application to end every turn: the caller is never answered.
    assert session.options.turn_handling["turn_detection"] == "vad"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "voice:\n  realtime:\n    agent: {voice_profile: nope}\n",
            "voice.realtime.agent.voice_profile: 'nope' is not a configured profile; use one of "
            "voice.voice_profiles: ['default', 'professional'] in pushed.yaml",
        ),
        (
            "voice:\n  realtime:\n    agent:\n      specialists:\n"
            "        - {name: billing, description: d, instructions: i, voice_profile: loud}\n",
            "voice.realtime.agent.specialists.0.voice_profile: 'loud' is not a configured profile",
        ),
        (
            "voice:\n  realtime:\n    agent: {tools: [crm]}\n",
            "voice.realtime.agent.tools.0: 'crm' is not a configured MCP server; use one of "
            "voice.realtime.mcp_servers: []",
        ),
        (
            "voice:\n  voice_profiles:\n    slow: fast\n",
            "voice.voice_profiles.slow: must be a mapping of keys to values (got 'fast')",
        ),
        (
            "voice:\n  realtime:\n    webhooks: {url: 'ftp://hooks.example.com'}\n",
            "voice.realtime.webhooks.url: must be an http:// or https:// URL",
        ),
        (
            "voice:\n  realtime:\n    agent:\n      specialists:\n"
            "        - {name: Billing, description: d, instructions: i}\n",
            "voice.realtime.agent.specialists.0.name: must be a lowercase letter",
        ),
    ],
)
def test_a_config_error_names_the_key_and_what_is_allowed(text: str, expected: str) -> None:
    message = error_of(text)
    assert expected in message
    assert "in pushed.yaml" in message
    assert "^" not in message and "instance of" not in message  # no raw regex, no class names


@pytest.mark.parametrize("raw", ["1m", "-5", "nan", "90000"])
def test_a_bad_config_ttl_names_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("VOICE_CONFIG_TTL_SECONDS", raw)
    with pytest.raises(ConfigError) as raised:
        ConfigCache("config/voice_config.yaml")
    assert str(raised.value).startswith("VOICE_CONFIG_TTL_SECONDS: must be a number of seconds")
    assert f"(got {raw!r}) in env VOICE_CONFIG_TTL_SECONDS" in str(raised.value)


def test_a_zero_ttl_does_not_make_the_background_refresh_spin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text("voice: {}\n")
    monkeypatch.setenv("VOICE_CONFIG_TTL_SECONDS", "0")
    cache = ConfigCache(str(path))
    reads = 0
    real = cache.refresh

    def counted():
        nonlocal reads
        reads += 1
        return real()

    cache.refresh = counted  # type: ignore[method-assign]
    try:
        cache.start_background_refresh()
        time.sleep(1.5)
    finally:
        cache.stop()
    # Once a second at most (a loop would have read the file thousands of times).
    assert reads <= 3, reads
