"""One call, from job start to session report: the `rtc_session` entrypoint and the `Call` it runs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livekit import rtc
from livekit.agents import AgentSession, JobContext, JobProcess, vad
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.agent_session import RecordingOptions
from livekit.agents.voice.background_audio import (
    AudioConfig,
    BackgroundAudioPlayer,
    BuiltinAudioClip,
)
from livekit.agents.voice.events import CloseEvent, ErrorEvent

from voice.config import LoadedConfig, get_config
from voice.config.schema import AudioSettings, MCPServer, RealtimeSettings, VADSettings
from voice.metadata import DispatchMetadata
from voice.name_redaction import NameRedactionFailed, redact_names
from voice.privacy import NAME, kept_transcript
from voice.report import TranscriptEntry, recording_key
from voice.rooms import session_id_from_room
from voice.templating import fill
from worker.agents import CallData, build_toolsets, first_agent
from worker.carry import CarryWriter, Turn, chat_context, read_carry
from worker.config_watch import watch_config
from worker.emf import EmfEmitter
from worker.gate import SessionGateReader, start_check
from worker.jobs import plan_call
from worker.logs import configure_logging, logger
from worker.one_agent import DUPLICATE_AGENT, OneAgent
from worker.phone import SIP_KIND, callee_spoke_within, forward_dtmf, wait_until_answered
from worker.pipeline import (
    build_session,
    load_vad,
    resolve_profile,
    room_options,
    shared_ssl_context,
)
from worker.report import RECORDING_FILE, CallRecorder, ReportWriter, version_dimensions
from worker.room_watch import unless_room_gone
from worker.settings import WorkerEnv
from worker.tracing import TRACING, call_attributes, traced_call
from worker.versions import JobVersion, VersionReader, version_for_job
from worker.voicemail import Voicemail

if TYPE_CHECKING:
    from loguru import Logger

APOLOGY = "Sorry, I had a problem on my side just now. Could you say that again?"
GOODBYE = "We have reached the time limit for this call. Thank you for calling, goodbye!"
_GOODBYE_PLAYOUT_TIMEOUT = 20.0
# Imported lazily by httpx / the OpenAI SDK on a job's first request (each 100-500 ms of blocked
# loop on a busy machine, by the library's loop monitor): imported in prewarm instead.
WARM_IMPORTS = (
    "anyio._backends._asyncio",
    "anyio._core._sockets",
    "anyio.streams.stapled",
    "httpcore2._models",
    "openai.pagination",
)
_PLAYER_CLOSE_TIMEOUT = 2.0


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process, before any job: loads the config (kept fresh on a thread from
    now on, so a call never reads it on its event loop) and the Silero VAD it names."""
    env = WorkerEnv.from_env()
    configure_logging(env.log_level)
    for module in WARM_IMPORTS:
        importlib.import_module(module)
    realtime = watch_config(env).config.realtime
    settings = realtime.vad
    TRACING.ensure(realtime.observability.tracing)
    proc.userdata["vad"] = load_vad(settings)
    proc.userdata["vad_settings"] = settings
    proc.userdata["ssl_context"] = shared_ssl_context()
    proc.userdata["gate"] = SessionGateReader.from_env(WorkerEnv.from_env())
    proc.userdata["versions"] = VersionReader.from_env(env)


def vad_for(proc: JobProcess, settings: VADSettings) -> vad.VAD:
    """The prewarmed VAD, or a fresh one (about 25 ms) when the config changed since prewarm."""
    if proc.userdata.get("vad_settings") != settings or "vad" not in proc.userdata:
        proc.userdata["vad"] = load_vad(settings)
        proc.userdata["vad_settings"] = settings
    vad_model: vad.VAD = proc.userdata["vad"]
    return vad_model


def greet(session: AgentSession[CallData], realtime: RealtimeSettings) -> SpeechHandle:
    """The agent speaks first: the call's own greeting as written, else the configured prompt."""
    dispatch = session.userdata.dispatch
    if dispatch.greeting:
        return session.say(fill(dispatch.greeting, dispatch.variables))
    return session.generate_reply(instructions=fill(realtime.agent.greeting, dispatch.variables))


def install_error_handler(session: AgentSession[CallData], log: Logger) -> None:
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


def mcp_servers_in_use(realtime: RealtimeSettings) -> list[MCPServer]:
    """The MCP servers some agent of this call names; the others are never connected."""
    names = set(realtime.agent.tools)
    for spec in realtime.agent.specialists:
        names.update(spec.tools)
    return [s for s in realtime.mcp_servers if s.name in names]


@dataclass(frozen=True)
class CallSetup:
    """What a job knows before its call starts: env, config, dispatch, and a log bound to them."""

    ctx: JobContext
    env: WorkerEnv
    loaded: LoadedConfig
    dispatch: DispatchMetadata
    log: Logger
    emf: EmfEmitter

    @classmethod
    def from_job(cls, ctx: JobContext, version: JobVersion | None = None) -> CallSetup:
        """`version`: the agent version the job runs, in place of the config file's agent."""
        env = WorkerEnv.from_env()
        configure_logging(env.log_level)
        # The cache prewarm started: no read here (a background thread refreshes it), so a
        # changed config reaches the next call and a broken one leaves the last good one serving.
        loaded = get_config()
        if version is not None:
            # The same call is built from it as from the config file: only the sections differ.
            loaded = dataclasses.replace(loaded, config=version.spec.applied_to(loaded.config))
        plan = plan_call(ctx.job.metadata, loaded.config, room=ctx.room.name, job_id=ctx.job.id)
        # The report and metrics credit the version that runs (none when it could not be read).
        dispatch = plan.dispatch.model_copy(
            update={
                "agent_id": None if version is None else version.agent_id,
                "agent_version": None if version is None else version.version,
            }
        )
        log = logger.bind(
            session_id=plan.dispatch.session_id, room=ctx.room.name, job_id=ctx.job.id
        )
        for warning in plan.warnings:
            log.warning(f"dispatch metadata: {warning}")
        emf = EmfEmitter(env.metrics_namespace)
        return cls(ctx=ctx, env=env, loaded=loaded, dispatch=dispatch, log=log, emf=emf)

    @property
    def dimensions(self) -> dict[str, str] | None:
        return version_dimensions(self.dispatch.agent_id, self.dispatch.agent_version)

    @contextlib.contextmanager
    def counted(self) -> Iterator[None]:
        """JobsStarted now; JobsFailed and the traceback if the call raises."""
        ids = {"session_id": self.dispatch.session_id, "job_id": self.ctx.job.id}
        self.emf.emit({"JobsStarted": (1, "Count")}, self.dimensions, **ids)
        try:
            yield
        except Exception:
            self.emf.emit({"JobsFailed": (1, "Count")}, self.dimensions, **ids)
            self.log.exception("call failed")
            raise


class Call:
    """One call's session, recorder and report writer, and its steps in the order they run."""

    def __init__(self, setup: CallSetup) -> None:
        config = setup.loaded.config
        self.ctx = setup.ctx
        self.log = setup.log
        self.dispatch = setup.dispatch
        self.realtime = config.realtime
        self.data = CallData(
            config=config,
            dispatch=setup.dispatch,
            env=setup.env,
            toolsets=build_toolsets(mcp_servers_in_use(config.realtime)),
        )
        self.session: AgentSession[CallData] = build_session(
            config,
            profile=resolve_profile(config, setup.dispatch.voice_profile),
            env=setup.env,
            vad_model=vad_for(setup.ctx.proc, config.realtime.vad),
            userdata=self.data,
            ssl_context=setup.ctx.proc.userdata.get("ssl_context"),
            language=setup.dispatch.language,
        )
        # Both sides, only when the config allows it and the call asked for it.
        self.recording = setup.dispatch.record and config.realtime.recording.enabled
        self.recorder = CallRecorder(
            session_id=setup.dispatch.session_id,
            room=setup.ctx.room.name,
            job_id=setup.ctx.job.id,
            agent_type=setup.dispatch.agent_type,
            emf=setup.emf,
            config_version=setup.loaded.version,
            agent_id=setup.dispatch.agent_id,
            agent_version=setup.dispatch.agent_version,
            answer_timeout=config.realtime.rollout.answer_timeout_seconds,
        )
        self.writer = ReportWriter(bucket=setup.env.reports_bucket, directory=setup.env.reports_dir)
        self._time_limit: asyncio.Task[None] | None = None
        # The conversation so far when this agent replaces one that was lost (worker/carry.py).
        self.resumed: list[Turn] = []
        # The phone an outbound call rang, once it answered.
        self._callee: rtc.RemoteParticipant | None = None
        self._one_agent: OneAgent | None = None

    async def run(self) -> None:
        """Returns once the call is under way; the job's shutdown callbacks finish it."""
        self._listen()
        if not await self._join():
            return
        # A machine hears nothing before its beep, the thinking sound included: screen first.
        if not self.resumed and self._dialing_out and await self._met_a_machine():
            return
        await self._start_background_audio()
        await self._open()
        self._time_limit = asyncio.create_task(
            self._end_at_time_limit(self.realtime.limits.max_session_duration),
            name="max_session_duration",
        )

    def _listen(self) -> None:
        self.recorder.attach(self.session)
        install_error_handler(self.session, self.log)
        self.ctx.add_shutdown_callback(self._write_report)
        self.session.on("close", self._on_close)

    @property
    def _dialing_out(self) -> bool:
        return self.dispatch.phone is not None and self.dispatch.phone.direction == "outbound"

    async def _join(self) -> bool:
        """Joins and starts the session; False when an outbound call was never answered."""
        await self.ctx.connect()
        self.log.info(
            "joined room", agent_type=self.dispatch.agent_type, profile=self.dispatch.voice_profile
        )
        self._carry_conversation()
        self._one_agent = OneAgent(self.ctx, self.log, conversing=bool(self.resumed))
        self.session.on("conversation_item_added", self._one_agent.on_item_added)
        self._one_agent.start()
        if self._dialing_out:
            # Nothing is published before the callee answers: the control plane takes the
            # agent's first track as its cue to look at the call's status.
            phone = await self.ctx.wait_for_participant(kind=SIP_KIND)
            if not await wait_until_answered(self.ctx.room, phone):
                self.ctx.shutdown(reason="the callee did not answer")
                return False
            self.log.info("callee answered")
            self._callee = phone
        await self.session.start(
            agent=first_agent(self.data, chat_ctx=chat_context(self.resumed)),
            room=self.ctx.room,
            room_options=room_options(self.realtime.audio),
            record=recording_options(self.recording),
        )
        if self.dispatch.phone is not None:
            forward_dtmf(self.ctx.room, self.session)
        return True

    def _carry_conversation(self) -> None:
        """Reads the turns a lost agent left in the room's metadata, and keeps them written."""
        metadata = self.ctx.room.metadata or self.ctx.job.room.metadata
        self.resumed = read_carry(metadata)
        carry = CarryWriter(
            self.ctx.room.name,
            metadata,
            self.realtime.privacy.redact,
            turns=self.resumed,
            ssl_context=self.ctx.proc.userdata.get("ssl_context"),
        )
        self.session.on("conversation_item_added", carry.on_item_added)
        self.ctx.add_shutdown_callback(carry.aclose)
        if self.resumed:
            self.log.info("resuming the conversation of a lost agent", turns=len(self.resumed))

    async def _open(self) -> None:
        """The agent speaks first, except that a callee who says "Hello?" is answered instead,
        and an agent that resumes a conversation does not greet again. (An answering machine
        was screened before: hung up on or left a message, telephony.voicemail.)"""
        if self.resumed:
            return
        if self._dialing_out:
            wait = self.realtime.telephony.answer_silence_seconds
            if not await callee_spoke_within(self.session, wait):
                greet(self.session, self.realtime)
        elif self.dispatch.initial_greeting:
            greet(self.session, self.realtime)

    async def _met_a_machine(self) -> bool:
        """True when voicemail detection is on and the callee was a machine (the call is over)."""
        settings = self.realtime.telephony.voicemail
        if not settings.detect or self._callee is None:
            return False
        message = settings.message
        if message is not None:
            message = fill(message, self.dispatch.variables)
        screen = Voicemail(self.ctx, self.session, self._callee, settings, self.log, message)
        return await screen.screen()

    async def _start_background_audio(self) -> None:
        player = thinking_player(self.realtime.audio)
        if player is None:
            return
        await player.start(room=self.ctx.room, agent_session=self.session)

        async def close_player() -> None:
            # The library disconnects the room before shutdown callbacks run, and unpublishing
            # from a disconnected room hangs until the timeout: 2 s more holding the slot. The
            # process exits right after, which releases the player anyway.
            if not self.ctx.room.isconnected():
                return
            try:
                await asyncio.wait_for(player.aclose(), _PLAYER_CLOSE_TIMEOUT)
            except (TimeoutError, Exception) as exc:
                self.log.warning("background audio did not close cleanly", error=repr(exc))

        self.ctx.add_shutdown_callback(close_player)

    async def _end_at_time_limit(self, seconds: float) -> None:
        """Ends the call politely at `max_session_duration`: a goodbye, then the room is deleted."""
        await asyncio.sleep(seconds)
        self.log.info("max_session_duration reached, ending the call", seconds=seconds)
        handle = self.session.say(GOODBYE, allow_interruptions=False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.wait_for_playout(), _GOODBYE_PLAYOUT_TIMEOUT)
        try:
            await self.ctx.delete_room()
        except Exception as exc:  # the room may already be gone; the job ends either way
            self.log.warning("could not delete room", error=str(exc))
        self.ctx.shutdown(reason="max_session_duration")

    def _on_close(self, ev: CloseEvent) -> None:
        # The caller left (or the session failed): end the job now rather than at room timeout.
        self.ctx.shutdown(reason=f"session closed: {ev.reason.value}")

    async def _write_report(self, reason: str) -> None:
        if self._time_limit is not None:
            self._time_limit.cancel()
        if reason == DUPLICATE_AGENT:
            return  # the agent that stays writes the call's report
        report = self.recorder.build_report(self.session, end_reason=reason)
        report.transcript = await self._kept_transcript(report.transcript)
        if self.recording:
            report.recording_key = await self._upload_recording()
        try:
            where = await asyncio.to_thread(self.writer.write, report)
            self.log.info("session report written", where=where, reason=reason)
        except Exception:
            self.log.exception("could not write the session report")

    async def _kept_transcript(self, transcript: list[TranscriptEntry]) -> list[TranscriptEntry]:
        """The transcript the privacy settings let the report keep: patterns redacted here,
        names by the redactor model (after the patterns, so it never sees them); none at all
        when the names could not be redacted."""
        privacy = self.realtime.privacy
        kept = kept_transcript(transcript, privacy.redact, privacy.store_transcripts)
        if NAME not in privacy.redact or not kept:
            return kept
        try:
            return await asyncio.to_thread(redact_names, kept, privacy.name_redactor)
        except NameRedactionFailed as exc:
            self.log.warning("names not redacted: the report keeps no transcript", why=str(exc))
            return []

    async def _upload_recording(self) -> str | None:
        # Closing the session flushes the recorder and finishes the Ogg file.
        await self.session.aclose()
        path = self.ctx.session_directory / RECORDING_FILE
        try:
            where = await asyncio.to_thread(
                self.writer.write_recording, self.dispatch.session_id, path
            )
        except Exception:
            self.log.exception("could not store the call recording")
            return None
        self.log.info("call recording stored", where=where)
        return recording_key(self.dispatch.session_id) if where else None


def recording_options(record: bool) -> RecordingOptions:
    """Audio only: traces, logs and transcripts would go to LiveKit Cloud, which we never call."""
    return {"audio": record, "traces": False, "logs": False, "transcript": False}


async def admitted(setup: CallSetup, check: asyncio.Future[bool] | None) -> bool:
    """The session check's answer; a table that cannot be read lets the call go on (the webhook
    still closes a dead session's room)."""
    if check is None:
        return True
    try:
        return await check
    except Exception as exc:
        setup.log.warning("session check failed; starting the call", error=repr(exc))
        return True


async def refuse(setup: CallSetup) -> None:
    """No agent for a session that is not live: the room is deleted and the job ends unjoined."""
    setup.log.warning("session is not live: no agent, room closed")
    setup.emf.emit({"JobsRefused": (1, "Count")}, session_id=setup.dispatch.session_id)
    await setup.ctx.delete_room(setup.ctx.job.room.name)
    setup.ctx.shutdown(reason="session not live")


async def entrypoint(ctx: JobContext) -> None:
    # Cached after a process's first call of a version: only a new version costs a read.
    version = await version_for_job(
        ctx.job.metadata,
        session_id_from_room(ctx.job.room.name) or "",
        ctx.proc.userdata.get("versions"),
        logger.bind(room=ctx.room.name, job_id=ctx.job.id),
    )
    setup = CallSetup.from_job(ctx, version)
    # The room's name carries the session id the control plane gave it; metadata is secondary.
    session_id = session_id_from_room(ctx.job.room.name) or setup.dispatch.session_id
    check = start_check(ctx.proc.userdata.get("gate"), session_id)
    config = setup.loaded.config
    tracing = config.realtime.observability.tracing
    with traced_call(ctx, tracing, call_attributes(config, setup.dispatch, ctx)), setup.counted():
        call = Call(setup)
        if not await admitted(setup, check):
            await refuse(setup)
            return
        await unless_room_gone(ctx, call.run(), ssl_context=ctx.proc.userdata.get("ssl_context"))
