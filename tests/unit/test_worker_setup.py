"""The worker's AgentServer and AgentSession built from config: each setting lands where read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from voice.config import load_config, parse_config
from voice.config.schema import VoiceConfig, WorkerSettings
from worker.call import prewarm
from worker.jobs import plan_call
from worker.pipeline import (
    build_session,
    llm_options,
    resolve_profile,
    room_options,
    shared_ssl_context,
    stt_options,
    tts_options,
    vad_options,
)
from worker.server import PRELOAD_ENV, build_server, server_options
from worker.settings import WorkerEnv

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "voice_config.yaml"
ENV = WorkerEnv(
    livekit_url="ws://127.0.0.1:7880",
    livekit_api_key=DEV_LIVEKIT_KEY,
    livekit_api_secret=DEV_LIVEKIT_SECRET,
    openai_api_key="sk-test",
    openai_base_url="http://127.0.0.1:9999/v1",
)


def _config(env_overrides: dict[str, str] | None = None) -> VoiceConfig:
    return load_config(str(REPO_CONFIG), env=env_overrides or {}).config


def test_server_uses_the_reference_worker_defaults_from_config() -> None:
    settings = _config().realtime.worker
    options = server_options(settings, ENV)
    assert {k: v for k, v in options.items() if k not in ("load_fnc", "load_threshold")} == {
        "num_idle_processes": 4,  # one warm process per slot
        "port": 0,
        "host": "0.0.0.0",
        "job_memory_warn_mb": 700,
        "job_memory_limit_mb": 0,
        "drain_timeout": 110,
        "initialize_process_timeout": 10.0,
        "ws_url": "ws://127.0.0.1:7880",
        "api_key": DEV_LIVEKIT_KEY,
        "api_secret": DEV_LIVEKIT_SECRET,
    }
    # The running worker reports it on /worker (tests/integration/test_worker_livekit.py).
    assert settings.agent_name == "openagents-voice"
    assert build_server(_config(), ENV).setup_fnc is prewarm


def test_the_six_env_overrides_reach_the_server() -> None:
    settings = _config(
        {
            "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES": "3",
            "OPENAGENTS_LIVEKIT_JOB_MEMORY_WARN_MB": "500",
            "OPENAGENTS_LIVEKIT_JOB_MEMORY_LIMIT_MB": "900",
            "OPENAGENTS_LIVEKIT_LOAD_THRESHOLD": "0.5",
            "OPENAGENTS_LIVEKIT_WORKER_PORT": "8081",
            "OPENAGENTS_LIVEKIT_AGENT_NAME": "night-shift",
        }
    ).realtime.worker
    options = server_options(settings, ENV)
    assert options["num_idle_processes"] == 3
    assert options["job_memory_warn_mb"] == 500
    assert options["job_memory_limit_mb"] == 900
    assert options["load_threshold"] == pytest.approx(0.5)
    assert options["port"] == 8081
    assert settings.agent_name == "night-shift"


class _Jobs:
    def __init__(self, count: int) -> None:
        self.active_jobs = [object()] * count


@pytest.mark.parametrize("max_jobs", [1, 2, 3, 4, 5, 7, 10, 64, 256])
@pytest.mark.parametrize("threshold", [0.1, 0.5, 0.7, 0.75, 0.9, 1.0])
def test_a_worker_is_full_at_exactly_max_jobs_whatever_the_threshold(
    max_jobs: int, threshold: float
) -> None:
    settings = WorkerSettings(max_jobs=max_jobs, load_threshold=threshold)
    options = server_options(settings, ENV)
    load, full_at = options["load_fnc"], options["load_threshold"]
    # The library's test: full when load >= threshold; pending jobs count at load / active each.
    assert [load(_Jobs(k)) >= full_at for k in range(max_jobs + 2)] == [False] * max_jobs + [
        True,
        True,
    ]
    for active in range(1, max_jobs):
        per_job = load(_Jobs(active)) / active
        pending = max_jobs - active
        assert load(_Jobs(active)) + pending * per_job >= full_at
        assert load(_Jobs(active)) + (pending - 1) * per_job < full_at
    assert load(_Jobs(max_jobs)) == pytest.approx(threshold, abs=1e-4)


def test_an_idle_pool_is_one_process_per_slot_unless_configured() -> None:
    assert server_options(WorkerSettings(max_jobs=6), ENV)["num_idle_processes"] == 6
    assert (
        server_options(WorkerSettings(max_jobs=6, num_idle_processes=2), ENV)["num_idle_processes"]
        == 2
    )


def test_end_of_turn_model_is_not_preloaded_unless_config_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PRELOAD_ENV, raising=False)
    build_server(_config(), ENV)
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
      stt: {model: whisper-1, language: de, base_url: "http://stt.local/v1", streaming: false}
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
    profile = resolve_profile(config, None)
    assert stt_options(config, ENV) == {
        "model": "whisper-1",
        "language": "de",
        "base_url": "http://stt.local/v1",
        "api_key": "sk-test",
    }
    # A call's own language wins over the config's.
    assert stt_options(config, ENV, "pt-BR")["language"] == "pt-BR"
    # LLM base_url falls back to OPENAI_BASE_URL from the environment.
    assert llm_options(config, ENV) == {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "base_url": "http://127.0.0.1:9999/v1",
        "api_key": "sk-test",
    }
    options = tts_options(config, profile, ENV)
    assert (options["model"], options["voice"], options["speed"]) == ("tts-1-hd", "onyx", 0.8)
    # The session's providers are built from those options.
    assert (session.stt.model, session.stt.provider) == ("whisper-1", "stt.local")
    assert (session.llm.model, session.llm.provider) == ("gpt-4o-mini", "127.0.0.1:9999")
    assert session.tts.model == "tts-1-hd"


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
            "instructions": "Help {{name}}.",
            "greeting": "Hi {{name}}!",
            "variables": {"name": "Dana"},
            "language": "de",
            "record": True,
        }
    )
    plan = plan_call(raw, config, room="voice-u-s1", job_id="AJ_1")
    assert plan.warnings == []
    assert plan.dispatch.model_dump(exclude_none=True) == json.loads(raw)


async def test_latency_levers_reach_the_session_and_the_transcriber() -> None:
    text = """
voice:
  providers:
    openai:
      stt: {streaming: true}
  realtime:
    vad: {min_silence_duration: 0.3}
    turn_detection: {preemptive_generation: false, preemptive_tts: true, final_transcript_timeout: 1.5}
"""
    config = parse_config(text, "test", env={})
    session = build_session(
        config,
        profile=resolve_profile(config, None),
        env=ENV,
        vad_model=None,
        ssl_context=shared_ssl_context(),
    )
    preemptive = session.options.turn_handling["preemptive_generation"]
    assert (preemptive["enabled"], preemptive["preemptive_tts"]) == (False, True)
    assert session.options.session_close_transcript_timeout == 1.5
    assert stt_options(config, ENV)["use_realtime"] is True
    # The transcriber ends speech after the same silence as the worker's VAD.
    assert stt_options(config, ENV)["turn_detection"]["silence_duration_ms"] == 300
    assert session.stt.capabilities.streaming is True
    # Providers built on the process's SSL context still talk to the configured server.
    assert session.llm.provider == "127.0.0.1:9999"


def test_by_default_generation_is_preemptive_and_transcription_streams() -> None:
    for config in (_config(), parse_config("{}", "test", env={})):  # the repo's file, the schema
        td = config.realtime.turn_detection
        assert (td.preemptive_generation, td.preemptive_tts) == (True, False)
        assert stt_options(config, ENV)["use_realtime"] is True
        # The silence that ends speech is no longer than the endpointing delay.
        assert config.realtime.vad.min_silence_duration <= td.min_endpointing_delay
    off = "voice: {providers: {openai: {stt: {streaming: false}}}}"
    assert "use_realtime" not in stt_options(parse_config(off, "test", env={}), ENV)


def test_the_callers_audio_enters_at_the_configured_rate_with_gain_control_as_configured() -> None:
    default = room_options(_config().realtime.audio).get_audio_input_options()
    assert default is not None
    assert (default.sample_rate, default.auto_gain_control) == (24000, True)
    text = "voice: {realtime: {audio: {input_sample_rate: 16000, auto_gain_control: false}}}"
    chosen = room_options(parse_config(text, "test", env={}).realtime.audio)
    options = chosen.get_audio_input_options()
    assert options is not None
    assert (options.sample_rate, options.auto_gain_control) == (16000, False)
    with pytest.raises(ValueError, match="input_sample_rate"):
        parse_config("voice: {realtime: {audio: {input_sample_rate: 22050}}}", "test", env={})


def test_prewarm_builds_the_streaming_transcribers_tls_context_too() -> None:
    from livekit.agents.utils import http_context

    http_context._ssl_context_for.cache_clear()
    shared_ssl_context()
    assert http_context._ssl_context_for.cache_info().currsize == 1
