"""Builds the speech pipeline (VAD, STT, LLM, TTS, turn handling) from the unified config."""

from __future__ import annotations

import ssl
from typing import Any, TypeVar

# The OpenAI SDK runs on httpx2 (in the worker lock); plain httpx is only a development tool.
import httpx2 as httpx
import openai as openai_sdk
from livekit.agents import AgentSession, llm, room_io, stt, tts, vad
from livekit.agents.voice.turn import TurnDetectionMode, TurnHandlingOptions
from livekit.plugins import openai, silero

from voice.config.schema import (
    AudioSettings,
    RealtimeSettings,
    VADSettings,
    VoiceConfig,
    VoiceProfile,
)
from worker.settings import WorkerEnv

UserdataT = TypeVar("UserdataT")


def vad_options(settings: VADSettings) -> dict[str, Any]:
    """`silero.VAD.load` keyword arguments for `voice.realtime.vad`."""
    return {
        "activation_threshold": settings.threshold,
        "min_speech_duration": settings.min_speech_duration,
        "min_silence_duration": settings.min_silence_duration,
        "prefix_padding_duration": settings.prefix_padding_duration,
        # Longer speech is cut into chunks rather than buffered without bound.
        "max_buffered_speech": settings.max_speech_duration,
        "force_cpu": True,
    }


def load_vad(settings: VADSettings) -> vad.VAD:
    return silero.VAD.load(**vad_options(settings))


def turn_handling(realtime: RealtimeSettings) -> TurnHandlingOptions:
    """Explicit turn settings: nothing falls through to the library's cloud turn detector."""
    td = realtime.turn_detection
    detection: TurnDetectionMode
    if not td.enabled:
        # The reference's meaning: no end-of-turn detector, a turn ends on the VAD's silence.
        # Never "manual": nothing here ends turns by hand, so the agent would greet and go deaf.
        detection = "vad"
    elif td.mode == "model":
        from livekit.agents import inference

        # v1-mini is the local model; "v1" would call LiveKit's cloud gateway.
        detection = inference.TurnDetector(version="v1-mini", local_fallback=False)
    else:
        detection = td.mode
    return {
        "turn_detection": detection,
        "endpointing": {
            "min_delay": td.min_endpointing_delay,
            "max_delay": td.max_endpointing_delay,
        },
        "interruption": {
            "enabled": realtime.interruptions.allow,
            "min_duration": realtime.interruptions.min_duration,
        },
        "preemptive_generation": {
            "enabled": td.preemptive_generation,
            "preemptive_tts": td.preemptive_tts,
        },
    }


def room_options(audio: AudioSettings) -> room_io.RoomOptions:
    """How the caller's audio enters the pipeline: its rate, and gain control or not."""
    return room_io.RoomOptions(
        audio_input=room_io.AudioInputOptions(
            sample_rate=audio.input_sample_rate, auto_gain_control=audio.auto_gain_control
        )
    )


def resolve_profile(config: VoiceConfig, name: str | None) -> VoiceProfile:
    """The named voice profile; callers check the name first (see `worker.jobs`)."""
    profiles = config.voice.voice_profiles
    return profiles[name or config.realtime.agent.voice_profile]


def _client_kwargs(base_url: str | None, env: WorkerEnv) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    url = base_url or env.openai_base_url
    if url:
        kwargs["base_url"] = url
    if env.openai_api_key is not None:
        kwargs["api_key"] = env.openai_api_key.get_secret_value()
    return kwargs


def stt_options(
    config: VoiceConfig, env: WorkerEnv, language_override: str | None = None
) -> dict[str, Any]:
    """`openai.STT` keyword arguments: the call's language, the config's, or detection."""
    cfg = config.voice.providers.openai.stt
    chosen = language_override or cfg.language
    language: dict[str, Any] = {"language": chosen} if chosen else {"detect_language": True}
    streaming: dict[str, Any] = {}
    if cfg.streaming:
        streaming = {
            "use_realtime": True,
            "turn_detection": server_vad(config.realtime.vad),
        }
    return {"model": cfg.model, **language, **streaming, **_client_kwargs(cfg.base_url, env)}


def server_vad(settings: VADSettings) -> dict[str, Any]:
    """The streaming transcriber's own end of speech, the same as the worker's VAD.

    The final transcript comes only after the provider's silence window, so a longer one than
    `vad.min_silence_duration` (the plugin's default is 350 ms) would hold every turn back.
    """
    return {
        "type": "server_vad",
        "threshold": settings.threshold,
        "prefix_padding_ms": round(settings.prefix_padding_duration * 1000),
        "silence_duration_ms": round(settings.min_silence_duration * 1000),
    }


def llm_options(config: VoiceConfig, env: WorkerEnv) -> dict[str, Any]:
    """`openai.LLM` keyword arguments; no temperature means the provider's default."""
    cfg = config.voice.providers.openai.llm
    extra: dict[str, Any] = {}
    if cfg.temperature is not None:
        extra["temperature"] = cfg.temperature
    return {"model": cfg.model, **extra, **_client_kwargs(cfg.base_url, env)}


def tts_options(config: VoiceConfig, profile: VoiceProfile, env: WorkerEnv) -> dict[str, Any]:
    """`openai.TTS` keyword arguments: the profile's voice, model, speed and instructions win."""
    cfg = config.voice.providers.openai.tts
    extra: dict[str, Any] = {}
    instructions = profile.instructions or cfg.instructions
    if instructions:
        extra["instructions"] = instructions
    return {
        "model": profile.model_id or cfg.model,
        "voice": profile.voice_id or cfg.voice,
        "speed": profile.speed if profile.speed is not None else cfg.speed,
        **extra,
        **_client_kwargs(cfg.base_url, env),
    }


def shared_ssl_context() -> ssl.SSLContext:
    """The trust store httpx would load for each client (≈ 40-140 ms): built once, in prewarm.

    The streaming transcriber connects through the library's own aiohttp session, whose TLS
    context the library builds once per process on first use: that is warmed here too, or the
    first call of each process would parse the CA bundle on its event loop.
    """
    from livekit.agents.utils import http_context

    warm = getattr(http_context, "_create_ssl_context", None)
    if warm is not None:  # a private helper: a library without it just builds it late
        warm()
    return httpx.create_ssl_context()


def with_client(options: dict[str, Any], ssl_context: ssl.SSLContext | None) -> dict[str, Any]:
    """Swaps `base_url` / `api_key` for a client on the process's SSL context, if there is one.

    Each plugin otherwise builds its own httpx client, and with it an SSL context, on the job's
    event loop. Timeouts and pool limits are the plugins' own.
    """
    if ssl_context is None:
        return options
    rest = dict(options)
    http = httpx.AsyncClient(
        verify=ssl_context,
        timeout=httpx.Timeout(connect=15.0, read=5.0, write=5.0, pool=5.0),
        follow_redirects=True,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50, keepalive_expiry=120),
    )
    client = openai_sdk.AsyncClient(
        api_key=rest.pop("api_key", None),
        base_url=rest.pop("base_url", None),
        max_retries=0,
        http_client=http,
    )
    return {**rest, "client": client}


def build_stt(
    config: VoiceConfig,
    env: WorkerEnv,
    ssl_context: ssl.SSLContext | None = None,
    language: str | None = None,
) -> stt.STT:
    return openai.STT(**with_client(stt_options(config, env, language), ssl_context))


def build_llm(
    config: VoiceConfig, env: WorkerEnv, ssl_context: ssl.SSLContext | None = None
) -> llm.LLM:
    return openai.LLM(**with_client(llm_options(config, env), ssl_context))


def build_tts(
    config: VoiceConfig,
    profile: VoiceProfile,
    env: WorkerEnv,
    ssl_context: ssl.SSLContext | None = None,
) -> tts.TTS:
    return openai.TTS(**with_client(tts_options(config, profile, env), ssl_context))


def build_session(
    config: VoiceConfig,
    *,
    profile: VoiceProfile,
    env: WorkerEnv,
    vad_model: vad.VAD | None,
    userdata: UserdataT | None = None,
    llm_model: llm.LLM | None = None,
    ssl_context: ssl.SSLContext | None = None,
    language: str | None = None,
) -> AgentSession[UserdataT]:
    """The session for one call; `llm_model` lets tests run the same build with a fake."""
    return AgentSession(
        stt=build_stt(config, env, ssl_context, language),
        llm=llm_model or build_llm(config, env, ssl_context),
        tts=build_tts(config, profile, env, ssl_context),
        vad=vad_model,
        turn_handling=turn_handling(config.realtime),
        session_close_transcript_timeout=config.realtime.turn_detection.final_transcript_timeout,
        userdata=userdata,
    )
