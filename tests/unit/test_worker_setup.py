"""The worker's AgentServer and AgentSession built from config: each setting lands where read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from livekit.agents import AgentServer

from voice.config import load_config, parse_config
from worker.jobs import plan_call
from worker.pipeline import build_session, resolve_profile, vad_options
from worker.server import PRELOAD_ENV, build_server
from worker.settings import WorkerEnv

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "voice_config.yaml"
ENV = WorkerEnv(
    livekit_url="ws://127.0.0.1:7880",
    livekit_api_key="devkey",
    livekit_api_secret="secret",
    openai_api_key="sk-test",
    openai_base_url="http://127.0.0.1:9999/v1",
)


def _server(env_overrides: dict[str, str] | None = None) -> AgentServer:
    config = load_config(str(REPO_CONFIG), env=env_overrides or {}).config
    return build_server(config, ENV)


def test_server_uses_the_reference_worker_defaults_from_config() -> None:
    server = _server()
    assert server._num_idle_processes == 1
    assert server._port == 0
    assert server._host == "0.0.0.0"
    assert server._job_memory_warn_mb == 700
    assert server._job_memory_limit_mb == 0
    assert server._load_threshold == 0.7
    assert server._drain_timeout == 110
    assert server._initialize_process_timeout == 10.0
    assert server._agent_name == "openagents-voice"
    assert (server._ws_url, server._api_key, server._api_secret) == (
        "ws://127.0.0.1:7880",
        "devkey",
        "secret",
    )


def test_the_six_env_overrides_reach_the_server() -> None:
    server = _server(
        {
            "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES": "3",
            "OPENAGENTS_LIVEKIT_JOB_MEMORY_WARN_MB": "500",
            "OPENAGENTS_LIVEKIT_JOB_MEMORY_LIMIT_MB": "900",
            "OPENAGENTS_LIVEKIT_LOAD_THRESHOLD": "0.5",
            "OPENAGENTS_LIVEKIT_WORKER_PORT": "8081",
            "OPENAGENTS_LIVEKIT_AGENT_NAME": "night-shift",
        }
    )
    assert server._num_idle_processes == 3
    assert server._job_memory_warn_mb == 500
    assert server._job_memory_limit_mb == 900
    assert server._load_threshold == 0.5
    assert server._port == 8081
    assert server._agent_name == "night-shift"


def test_load_counts_active_jobs_against_max_jobs() -> None:
    server = _server()

    class Jobs:
        active_jobs = [object(), object(), object()]

    assert server._load_fnc is not None
    assert server._load_fnc(Jobs()) == pytest.approx(0.75)  # max_jobs 4 in the repo config
    Jobs.active_jobs = [object()] * 9
    assert server._load_fnc(Jobs()) == 1.0


def test_end_of_turn_model_is_not_preloaded_unless_config_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PRELOAD_ENV, raising=False)
    _server()
    import os

    assert os.environ[PRELOAD_ENV] == "0"
    text = "voice:\n  realtime:\n    worker:\n      preload_turn_detector: true\n"
    build_server(parse_config(text, "test", env={}), ENV)
    assert os.environ[PRELOAD_ENV] == "1"


async def test_session_takes_turn_handling_and_providers_from_config() -> None:
    text = """
voice:
  providers:
    openai:
      stt: {model: whisper-1, language: de, base_url: "http://stt.local/v1"}
      llm: {model: gpt-4o-mini, temperature: 0.2}
      tts: {model: tts-1, voice: alloy, speed: 1.0}
  voice_profiles:
    slow: {voice_id: onyx, model_id: tts-1-hd, speed: 0.8}
  realtime:
    agent: {voice_profile: slow}
    turn_detection: {min_endpointing_delay: 0.3, max_endpointing_delay: 2.5}
    interruptions: {allow: false, min_duration: 0.9}
"""
    config = parse_config(text, "test", env={})
    session = build_session(config, profile=resolve_profile(config, None), env=ENV, vad_model=None)
    th = session.options.turn_handling
    assert th["turn_detection"] == "vad"
    assert (th["endpointing"]["min_delay"], th["endpointing"]["max_delay"]) == (0.3, 2.5)
    assert th["interruption"]["enabled"] is False
    assert th["interruption"]["min_duration"] == 0.9
    assert session.stt.model == "whisper-1"
    assert str(session.stt._client.base_url) == "http://stt.local/v1/"
    assert session.llm.model == "gpt-4o-mini"
    assert session.llm._opts.temperature == 0.2
    # LLM base_url falls back to OPENAI_BASE_URL from the environment.
    assert str(session.llm._client.base_url) == "http://127.0.0.1:9999/v1/"
    opts = session.tts._opts
    assert (opts.model, opts.voice, opts.speed) == ("tts-1-hd", "onyx", 0.8)


def test_vad_options_map_the_vad_section() -> None:
    text = "voice:\n  realtime:\n    vad: {threshold: 0.6, min_speech_duration: 0.2}\n"
    options = vad_options(parse_config(text, "test", env={}).realtime.vad)
    assert options["activation_threshold"] == 0.6
    assert options["min_speech_duration"] == 0.2
    assert options["max_buffered_speech"] == 30.0


@pytest.mark.parametrize(
    ("raw", "warning"),
    [
        (None, "dispatch metadata is empty"),
        ("{not json", "not JSON"),
        (
            json.dumps({"session_id": "s9", "agent_type": "wizard", "initial_greeting": True}),
            "wizard",
        ),
        (
            json.dumps(
                {
                    "session_id": "s9",
                    "agent_type": "single_agent",
                    "initial_greeting": True,
                    "voice_profile": "opera",
                }
            ),
            "unknown voice_profile 'opera'",
        ),
    ],
)
def test_bad_metadata_falls_back_to_config_defaults_with_a_warning(
    raw: str | None, warning: str
) -> None:
    config = load_config(str(REPO_CONFIG), env={}).config
    room = "voice-u1-0b6a3a52-6a3c-4c1e-9a43-1d2f1f7f2e11"
    plan = plan_call(raw, config, room=room, job_id="AJ_1")
    assert any(warning in w for w in plan.warnings), plan.warnings
    assert plan.dispatch.agent_type in ("smart_router", "single_agent")
    assert plan.dispatch.voice_profile == "default"
    if raw is None:
        assert plan.dispatch.session_id == "0b6a3a52-6a3c-4c1e-9a43-1d2f1f7f2e11"
        assert plan.dispatch.agent_type == "smart_router"


def test_good_metadata_is_used_as_given() -> None:
    config = load_config(str(REPO_CONFIG), env={}).config
    raw = json.dumps(
        {
            "session_id": "s1",
            "agent_type": "single_agent",
            "initial_greeting": False,
            "voice_profile": "professional",
            "metadata": {"tier": "gold"},
        }
    )
    plan = plan_call(raw, config, room="voice-u-s1", job_id="AJ_1")
    assert plan.warnings == []
    assert plan.dispatch.model_dump() == {
        "session_id": "s1",
        "agent_type": "single_agent",
        "initial_greeting": False,
        "voice_profile": "professional",
        "metadata": {"tier": "gold"},
    }
