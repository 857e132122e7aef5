"""Pydantic schema of the unified voice config (`config/voice_config.yaml`), shared by both planes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voice.config.analysis import AnalysisSettings, NameRedactor
from voice.config.patterns import HTTP_URL, MCP_SERVER_NAME, SPECIALIST_NAME, KeyPathError
from voice.config.telephony import TelephonySettings
from voice.privacy import NAME, RedactKind

AgentType = Literal["smart_router", "single_agent"]
AGENT_TYPES: tuple[str, ...] = get_args(AgentType)


class _Section(BaseModel):
    # Unknown keys are rejected so a typo names itself instead of being silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenAITTS(_Section):
    voice: str = "coral"
    model: str = "gpt-4o-mini-tts"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0
    instructions: str | None = None
    base_url: str | None = None


class OpenAISTT(_Section):
    model: str = "gpt-4o-transcribe"
    language: str | None = None
    base_url: str | None = None
    # Stream audio to the realtime transcription API while the caller speaks, instead of one
    # request per utterance after it ends (measured: docs/performance.md). Needs a provider that
    # serves it (OpenAI does); false for a server with only /audio/transcriptions.
    streaming: bool = True


class OpenAILLM(_Section):
    model: str = "gpt-4o"
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    base_url: str | None = None


class OpenAIProvider(_Section):
    tts: OpenAITTS = OpenAITTS()
    stt: OpenAISTT = OpenAISTT()
    llm: OpenAILLM = OpenAILLM()


class Providers(_Section):
    openai: OpenAIProvider = OpenAIProvider()


class VoiceProfile(_Section):
    provider: Literal["openai"] = "openai"
    voice_id: str
    model_id: str = "gpt-4o-mini-tts"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] | None = None
    instructions: str | None = None


class LiveKitSettings(_Section):
    room_empty_timeout: Annotated[int, Field(ge=1, le=86400)] = 300
    max_participants: Annotated[int, Field(ge=2, le=100)] = 2


class VADSettings(_Section):
    provider: Literal["silero"] = "silero"
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    min_speech_duration: Annotated[float, Field(ge=0.0, le=5.0)] = 0.1
    max_speech_duration: Annotated[float, Field(gt=0.0, le=600.0)] = 30.0
    # No longer than turn_detection.min_endpointing_delay, which is what guards the caller's
    # pauses: a longer silence only delays every turn (measured: docs/performance.md).
    min_silence_duration: Annotated[float, Field(ge=0.0, le=5.0)] = 0.3
    prefix_padding_duration: Annotated[float, Field(ge=0.0, le=5.0)] = 0.5


class TurnDetectionSettings(_Section):
    # false: no turn detector; a turn ends on the VAD's silence (as mode "vad"), `mode` unused.
    enabled: bool = True
    # "vad" endpoints on silence; "stt" on the transcriber's end of utterance; "model" runs the
    # local end-of-turn model (about 250 MB per process, so it is never the default).
    mode: Literal["vad", "stt", "model"] = "vad"
    min_endpointing_delay: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5
    max_endpointing_delay: Annotated[float, Field(gt=0.0, le=30.0)] = 3.0
    # Start the LLM on the final transcript, before the endpointing delay has run out (a
    # reply the caller cuts off is thrown away); preemptive_tts starts the TTS too.
    preemptive_generation: bool = True
    preemptive_tts: bool = False
    # When the call ends, how long to wait for the transcript of what the caller said last
    # (the library's default is 2 s, all of it holding the worker's job slot after a hang-up).
    final_transcript_timeout: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5

    @model_validator(mode="after")
    def _delays_ordered(self) -> TurnDetectionSettings:
        if self.max_endpointing_delay < self.min_endpointing_delay:
            raise ValueError(
                "max_endpointing_delay must be >= min_endpointing_delay "
                f"(got {self.max_endpointing_delay} < {self.min_endpointing_delay})"
            )
        return self


class InterruptionSettings(_Section):
    allow: bool = True
    min_duration: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5


class MCPServer(_Section):
    name: Annotated[str, Field(pattern=MCP_SERVER_NAME)]
    transport: Literal["http", "stdio"] = "http"
    url: str | None = None
    command: str | None = None
    args: list[str] = []
    headers: dict[str, str] = {}
    timeout: Annotated[float, Field(gt=0.0, le=300.0)] = 10.0

    @model_validator(mode="after")
    def _transport_target(self) -> MCPServer:
        if self.transport == "http" and not self.url:
            raise ValueError(f"MCP server '{self.name}' uses transport http and needs a url")
        if self.transport == "stdio" and not self.command:
            raise ValueError(f"MCP server '{self.name}' uses transport stdio and needs a command")
        return self


class Specialist(_Section):
    name: Annotated[str, Field(pattern=SPECIALIST_NAME)]
    description: str
    instructions: str
    voice_profile: str | None = None
    # Names of entries in `voice.realtime.mcp_servers` this specialist may use.
    tools: list[str] = []


DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Keep answers short and conversational: "
    "one or two sentences, no lists, no markdown."
)


class AgentSettings(_Section):
    type: AgentType = "smart_router"
    instructions: str = DEFAULT_INSTRUCTIONS
    initial_greeting: bool = True
    greeting: str = "Greet the caller warmly in one short sentence and ask how you can help."
    voice_profile: str = "default"
    specialists: list[Specialist] = []
    # MCP servers the single agent (or the router itself) may use.
    tools: list[str] = []
    # Whether POST /session and POST /call may send instructions, greeting, variables and
    # language per call.
    allow_overrides: bool = True


class AudioSettings(_Section):
    enable_thinking_sound: bool = True
    thinking_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    # The rate the caller's audio is brought to for the VAD and the STT (Silero runs at 16 kHz).
    input_sample_rate: Literal[16000, 24000, 48000] = 24000
    # WebRTC's automatic gain control on the caller's audio, every 10 ms frame.
    auto_gain_control: bool = True


class LimitSettings(_Section):
    max_sessions_per_user: Annotated[int, Field(ge=1, le=1000)] = 3
    max_session_duration: Annotated[int, Field(ge=10, le=86400)] = 3600
    token_ttl_hours: Annotated[float, Field(gt=0.0, le=24.0)] = 2
    max_metadata_bytes: Annotated[int, Field(ge=0, le=16384)] = 2048
    # Seconds a new session has for its caller to join; then it expires and its token no longer
    # brings an agent. The token itself lives token_ttl_hours (reconnects in a live call).
    join_timeout: Annotated[int, Field(ge=1, le=86400)] = 120
    # Live sessions an account may hold across all its keys and end users; one account can
    # be given its own (`python -m functions.keys account-limit`).
    max_sessions_per_account: Annotated[int, Field(ge=1, le=1_000_000)] = 100

    @model_validator(mode="before")
    @classmethod
    def _account_default_holds_a_user(cls, data: Any) -> Any:
        # A config written before accounts existed (no account limit) keeps working whatever
        # its per-user limit: the default account limit is never below it.
        if isinstance(data, dict) and "max_sessions_per_account" not in data:
            user = data.get("max_sessions_per_user", 3)
            if isinstance(user, int) and user > 100:
                return {**data, "max_sessions_per_account": user}
        return data

    @model_validator(mode="after")
    def _account_holds_a_user(self) -> LimitSettings:
        if self.max_sessions_per_account < self.max_sessions_per_user:
            raise ValueError(
                "max_sessions_per_account must be >= max_sessions_per_user (a key without "
                f"end users would meet the account's limit first; got "
                f"{self.max_sessions_per_account} < {self.max_sessions_per_user})"
            )
        return self


class WorkerSettings(_Section):
    # Warm job processes; null = max_jobs, so a burst of calls never waits on a process start.
    num_idle_processes: Annotated[int, Field(ge=0, le=64)] | None = None
    # 0 picks a free port for the worker's HTTP (health) server.
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    job_memory_warn_mb: Annotated[int, Field(ge=0)] = 700
    job_memory_limit_mb: Annotated[int, Field(ge=0)] = 0
    load_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    agent_name: Annotated[str, Field(min_length=1, max_length=128)] = "openagents-voice"
    # Calls a worker takes; it reports itself full at exactly this many. load_threshold is only
    # the load it then reports to LiveKit (load = load_threshold * active jobs / max_jobs).
    max_jobs: Annotated[int, Field(ge=1, le=256)] = 4
    drain_timeout: Annotated[int, Field(ge=0, le=86400)] = 110
    initialize_process_timeout: Annotated[float, Field(gt=0.0, le=600.0)] = 10.0
    # Preloading the local end-of-turn model costs about 250 MB per process.
    preload_turn_detector: bool = False
    # Seconds between heartbeats; a heartbeat counts for admission 3 intervals (>= 15 s), and a
    # worker silent for 2 intervals has its calls taken over by a peer.
    heartbeat_interval: Annotated[float, Field(ge=1.0, le=60.0)] = 1.0


class AgentWatchdogSettings(_Section):
    """After a caller joins: no agent within `first_check` seconds means dispatch again."""

    first_check: Annotated[int, Field(ge=1, le=60)] = 3
    # Each later check waits `backoff` times longer than the one before, at most `max_delay`.
    backoff: Annotated[float, Field(ge=1.0, le=4.0)] = 1.5
    max_delay: Annotated[int, Field(ge=1, le=900)] = 4
    # Dispatches the watchdog makes before it fails the session (end_reason no_agent_available).
    max_dispatches: Annotated[int, Field(ge=0, le=20)] = 5

    def delay(self, attempt: int) -> int:
        """Seconds before check number `attempt` (0 = the first, right after the join)."""
        if attempt == 0:
            return self.first_check
        return min(self.max_delay, round(self.first_check * self.backoff**attempt))


class AdmissionSettings(_Section):
    """POST /session is refused (503 fleet_at_capacity) when no worker has a free slot."""

    enabled: bool = True
    retry_after: Annotated[int, Field(ge=1, le=3600)] = 5


class RolloutSettings(_Section):
    """Automatic rollback: the monitor compares each canary version with its agent's baseline
    (the version with most traffic) over the last `window_seconds`, and sends all traffic back
    to the baseline when the canary is worse."""

    auto_rollback: bool = True
    # A canary whose failed share of sessions is over this multiple of the baseline's is rolled back.
    failure_multiple: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0
    # A canary whose end-of-speech -> agent-audio p95 is over the baseline's by this is rolled back.
    latency_margin_ms: Annotated[int, Field(ge=0, le=60000)] = 300
    window_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    # Finished sessions each of canary and baseline needs in the window before it is judged.
    min_sessions: Annotated[int, Field(ge=1, le=100000)] = 20
    # A caller's turn the agent has not answered this long after it ended counts as unanswered
    # (the worker counts them in the session report); a session with one has failed.
    answer_timeout_seconds: Annotated[float, Field(gt=0.0, le=120.0)] = 8.0


class EvalSettings(_Section):
    """Agent evaluations (`python -m evals`): the simulated caller's and the judge's models, and
    whether traffic may move to a version that has not passed one."""

    # true: traffic above `canary_percent` cannot move to a version without a passing evaluation.
    required: bool = False
    # The share a version may get without a passing evaluation (a canary), in whole percent.
    canary_percent: Annotated[int, Field(ge=0, le=99)] = 10
    # The model playing the caller, apart from the agent's own.
    caller_model: str = "gpt-4o-mini"
    # The model judging intents (pass / fail / unsure with a reason).
    judge_model: str = "gpt-4o-mini"
    # The OpenAI-compatible server of both; null: OPENAI_BASE_URL, else OpenAI.
    base_url: Annotated[str, Field(pattern=HTTP_URL)] | None = None


WebhookEventType = Literal[
    "session.started", "session.ended", "session.failed", "session.analyzed", "agent.rolled_back"
]
WEBHOOK_EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)


class WebhookSettings(_Section):
    # Where signed session events are POSTed; none turns customer webhooks off.
    url: Annotated[str, Field(pattern=HTTP_URL)] | None = None
    events: list[WebhookEventType] = list(WEBHOOK_EVENT_TYPES)  # type: ignore[arg-type]
    timeout_seconds: Annotated[float, Field(gt=0.0, le=30.0)] = 5.0


class RecordingSettings(_Section):
    # Calls are recorded only when this is on and the create request asks for it (record: true).
    enabled: bool = False
    url_ttl_seconds: Annotated[int, Field(ge=60, le=604800)] = 3600


class PrivacySettings(_Section):
    """What a call leaves behind: personal data redacted from stored transcripts, or none kept."""

    # Kinds of personal data replaced in stored transcripts (and so in the transcript API,
    # customer webhooks and the post-call analysis) by a placeholder such as [phone].
    redact: list[RedactKind] = []
    # false: reports keep timings and usage but no transcript at all.
    store_transcripts: bool = True
    # The model that finds people's names (`redact: [name]` needs it enabled).
    name_redactor: NameRedactor = NameRedactor()

    @model_validator(mode="after")
    def _names_need_the_redactor(self) -> PrivacySettings:
        if NAME in self.redact and not self.name_redactor.enabled:
            raise KeyPathError(
                "redact",
                "'name' needs the LLM name redactor: set "
                "voice.realtime.privacy.name_redactor.enabled: true (names have no pattern)",
            )
        return self


TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


class TracingSettings(_Section):
    """OpenTelemetry traces of each call, exported over OTLP/HTTP (docs/observability.md)."""

    enabled: bool = False
    # The OTLP/HTTP traces URL; none: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the template points it
    # at X-Ray, `make dev` at the local Jaeger); with neither, nothing is exported.
    endpoint: Annotated[str, Field(pattern=HTTP_URL)] | None = None
    # The share of calls traced, decided once where the call's trace starts (the API's create).
    sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    # true keeps what was said (transcripts, prompts, tool arguments) in span attributes.
    include_content: bool = False

    def export_endpoint(self, environ: Mapping[str, str]) -> str | None:
        """Where spans go, or None when nothing is to be traced (off, or no endpoint known)."""
        if not self.enabled:
            return None
        return self.endpoint or environ.get(TRACES_ENDPOINT_ENV) or None


class ObservabilitySettings(_Section):
    tracing: TracingSettings = TracingSettings()


class RealtimeSettings(_Section):
    enabled: bool = True
    livekit: LiveKitSettings = LiveKitSettings()
    vad: VADSettings = VADSettings()
    turn_detection: TurnDetectionSettings = TurnDetectionSettings()
    interruptions: InterruptionSettings = InterruptionSettings()
    agent: AgentSettings = AgentSettings()
    audio: AudioSettings = AudioSettings()
    limits: LimitSettings = LimitSettings()
    worker: WorkerSettings = WorkerSettings()
    agent_watchdog: AgentWatchdogSettings = AgentWatchdogSettings()
    admission: AdmissionSettings = AdmissionSettings()
    mcp_servers: list[MCPServer] = []
    webhooks: WebhookSettings = WebhookSettings()
    recording: RecordingSettings = RecordingSettings()
    privacy: PrivacySettings = PrivacySettings()
    analysis: AnalysisSettings = AnalysisSettings()
    telephony: TelephonySettings = TelephonySettings()
    rollout: RolloutSettings = RolloutSettings()
    evals: EvalSettings = EvalSettings()
    observability: ObservabilitySettings = ObservabilitySettings()


def _default_profiles() -> dict[str, VoiceProfile]:
    return {
        "default": VoiceProfile(voice_id="coral", model_id="gpt-4o-mini-tts"),
        "professional": VoiceProfile(voice_id="echo", model_id="gpt-4o-mini-tts", speed=0.9),
    }


class VoiceSettings(_Section):
    providers: Providers = Providers()
    voice_profiles: dict[str, VoiceProfile] = Field(default_factory=_default_profiles)
    realtime: RealtimeSettings = RealtimeSettings()

    @model_validator(mode="after")
    def _references_resolve(self) -> VoiceSettings:
        agent = self.realtime.agent
        profiles = f"one of voice.voice_profiles: {sorted(self.voice_profiles)}"
        servers = {s.name for s in self.realtime.mcp_servers}
        known_servers = f"one of voice.realtime.mcp_servers: {sorted(servers)}"
        if agent.voice_profile not in self.voice_profiles:
            raise KeyPathError(
                "realtime.agent.voice_profile",
                f"'{agent.voice_profile}' is not a configured profile; use {profiles}",
            )
        for i, tool in enumerate(agent.tools):
            if tool not in servers:
                raise KeyPathError(
                    f"realtime.agent.tools.{i}",
                    f"'{tool}' is not a configured MCP server; use {known_servers}",
                )
        names: set[str] = set()
        for i, spec in enumerate(agent.specialists):
            at = f"realtime.agent.specialists.{i}"
            if spec.name in names:
                raise KeyPathError(f"{at}.name", f"'{spec.name}' is used twice; names are unique")
            names.add(spec.name)
            if spec.voice_profile is not None and spec.voice_profile not in self.voice_profiles:
                raise KeyPathError(
                    f"{at}.voice_profile",
                    f"'{spec.voice_profile}' is not a configured profile; use {profiles}",
                )
            for j, tool in enumerate(spec.tools):
                if tool not in servers:
                    raise KeyPathError(
                        f"{at}.tools.{j}",
                        f"'{tool}' is not a configured MCP server; use {known_servers}",
                    )
        for i, entry in enumerate(self.realtime.telephony.inbound):
            if entry.voice_profile is not None and entry.voice_profile not in self.voice_profiles:
                raise KeyPathError(
                    f"realtime.telephony.inbound.{i}.voice_profile",
                    f"'{entry.voice_profile}' is not a configured profile; use {profiles}",
                )
        return self


class VoiceConfig(_Section):
    voice: VoiceSettings = VoiceSettings()

    @property
    def realtime(self) -> RealtimeSettings:
        return self.voice.realtime
