"""One call, from job start to session report: the `rtc_session` entrypoint and its helpers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from livekit.agents import AgentSession, JobContext, JobProcess, vad
from livekit.agents.voice.background_audio import (
    AudioConfig,
    BackgroundAudioPlayer,
    BuiltinAudioClip,
)
from livekit.agents.voice.events import CloseEvent, ErrorEvent

from voice.config import get_config
from voice.config.schema import AudioSettings, VADSettings
from worker.agents import CallData, build_toolsets, first_agent
from worker.emf import EmfEmitter
from worker.jobs import plan_call
from worker.logs import configure_logging, logger
from worker.pipeline import build_session, load_vad, resolve_profile
from worker.report import CallRecorder, ReportWriter
from worker.settings import WorkerEnv

if TYPE_CHECKING:
    from loguru import Logger

APOLOGY = "Sorry, I had a problem on my side just now. Could you say that again?"
GOODBYE = "We have reached the time limit for this call. Thank you for calling, goodbye!"
_GOODBYE_PLAYOUT_TIMEOUT = 20.0
_PLAYER_CLOSE_TIMEOUT = 2.0


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process, before any job: loads the Silero VAD from the config."""
    settings = get_config().config.realtime.vad
    proc.userdata["vad"] = load_vad(settings)
    proc.userdata["vad_settings"] = settings


def vad_for(proc: JobProcess, settings: VADSettings) -> vad.VAD:
    """The prewarmed VAD, or a fresh one (about 25 ms) when the config changed since prewarm."""
    if proc.userdata.get("vad_settings") != settings or "vad" not in proc.userdata:
        proc.userdata["vad"] = load_vad(settings)
        proc.userdata["vad_settings"] = settings
    return proc.userdata["vad"]


def greet(session: AgentSession[Any], greeting_instructions: str) -> Any:
    """The agent speaks first."""
    return session.generate_reply(instructions=greeting_instructions)


def install_error_handler(session: AgentSession[Any], log: Logger) -> None:
    """A provider that fails after its retries gets an apology instead of dead air."""

    def on_error(ev: ErrorEvent) -> None:
        err = ev.error
        kind = getattr(err, "type", type(err).__name__)
        recoverable = bool(getattr(err, "recoverable", False))
        log.error(
            "provider error",
            kind=kind,
            source=type(ev.source).__name__,
            recoverable=recoverable,
            error=str(getattr(err, "error", err)),
        )
        # Recoverable errors are retried by the library; a broken TTS cannot speak an apology.
        if not recoverable and kind in ("llm_error", "stt_error"):
            session.say(APOLOGY, allow_interruptions=True)

    session.on("error", on_error)


def thinking_player(audio: AudioSettings) -> BackgroundAudioPlayer | None:
    if not audio.enable_thinking_sound:
        return None
    return BackgroundAudioPlayer(
        thinking_sound=[
            AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING, volume=audio.thinking_volume),
            AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING2, volume=audio.thinking_volume),
        ]
    )


async def end_after(
    seconds: float, session: AgentSession[Any], ctx: JobContext, log: Logger
) -> None:
    """Ends the call politely at `max_session_duration`: a goodbye, then the room is deleted."""
    await asyncio.sleep(seconds)
    log.info("max_session_duration reached, ending the call", seconds=seconds)
    handle = session.say(GOODBYE, allow_interruptions=False)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(handle.wait_for_playout(), _GOODBYE_PLAYOUT_TIMEOUT)
    try:
        await ctx.delete_room()
    except Exception as exc:  # the room may already be gone; the job ends either way
        log.warning("could not delete room", error=str(exc))
    ctx.shutdown(reason="max_session_duration")


async def entrypoint(ctx: JobContext) -> None:
    env = WorkerEnv.from_env()
    configure_logging(env.log_level)
    emf = EmfEmitter(env.metrics_namespace)
    # Read per job through the shared cache: a changed config reaches the next call.
    loaded = get_config()
    config = loaded.config
    plan = plan_call(ctx.job.metadata, config, room=ctx.room.name, job_id=ctx.job.id)
    dispatch = plan.dispatch
    log = logger.bind(session_id=dispatch.session_id, room=ctx.room.name, job_id=ctx.job.id)
    for warning in plan.warnings:
        log.warning(f"dispatch metadata: {warning}")
    emf.emit({"JobsStarted": (1, "Count")}, session_id=dispatch.session_id, job_id=ctx.job.id)
    try:
        await _run_call(ctx, env, emf, log, plan.dispatch, loaded.version, config)
    except Exception:
        emf.emit({"JobsFailed": (1, "Count")}, session_id=dispatch.session_id, job_id=ctx.job.id)
        log.exception("call failed")
        raise


async def _run_call(
    ctx: JobContext,
    env: WorkerEnv,
    emf: EmfEmitter,
    log: Logger,
    dispatch: Any,
    config_version: str,
    config: Any,
) -> None:
    realtime = config.realtime
    names = set(realtime.agent.tools)
    for spec in realtime.agent.specialists:
        names.update(spec.tools)
    data = CallData(
        config=config,
        dispatch=dispatch,
        env=env,
        toolsets=build_toolsets([s for s in realtime.mcp_servers if s.name in names]),
    )
    session = build_session(
        config,
        profile=resolve_profile(config, dispatch.voice_profile),
        env=env,
        vad_model=vad_for(ctx.proc, realtime.vad),
        userdata=data,
    )
    recorder = CallRecorder(
        session_id=dispatch.session_id,
        room=ctx.room.name,
        job_id=ctx.job.id,
        agent_type=dispatch.agent_type,
        emf=emf,
        config_version=config_version,
    )
    recorder.attach(session)
    install_error_handler(session, log)
    writer = ReportWriter(bucket=env.reports_bucket, directory=env.reports_dir)
    tasks: list[asyncio.Task[Any]] = []

    async def on_shutdown(reason: str) -> None:
        for task in tasks:
            task.cancel()
        report = recorder.build_report(session, end_reason=reason)
        try:
            where = await asyncio.to_thread(writer.write, report)
            log.info("session report written", where=where, reason=reason)
        except Exception:
            log.exception("could not write the session report")

    ctx.add_shutdown_callback(on_shutdown)

    def on_close(ev: CloseEvent) -> None:
        # The caller left (or the session failed): end the job now rather than at room timeout.
        ctx.shutdown(reason=f"session closed: {ev.reason.value}")

    session.on("close", on_close)

    await ctx.connect()
    log.info("joined room", agent_type=dispatch.agent_type, profile=dispatch.voice_profile)
    await session.start(agent=first_agent(data), room=ctx.room)

    player = thinking_player(realtime.audio)
    if player is not None:
        await player.start(room=ctx.room, agent_session=session)

        async def close_player() -> None:
            # Unpublishing from a room that is already gone can hang; never hold the job on it.
            try:
                await asyncio.wait_for(player.aclose(), _PLAYER_CLOSE_TIMEOUT)
            except (TimeoutError, Exception) as exc:
                log.warning("background audio did not close cleanly", error=repr(exc))

        ctx.add_shutdown_callback(close_player)
    if dispatch.initial_greeting:
        greet(session, realtime.agent.greeting)
    tasks.append(
        asyncio.create_task(
            end_after(realtime.limits.max_session_duration, session, ctx, log),
            name="max_session_duration",
        )
    )
