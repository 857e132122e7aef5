"""Collects a call's transcript, per-turn latencies and usage, and writes the session report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents.metrics.usage import LLMModelUsage, STTModelUsage, TTSModelUsage
from livekit.agents.voice.events import ConversationItemAddedEvent, ErrorEvent

from voice.report import (
    SessionReport,
    TranscriptEntry,
    TurnLatency,
    Usage,
    recording_key,
    report_key,
)
from worker.emf import EmfEmitter

# Where livekit-agents' recorder writes a session's audio, in the job's session directory.
RECORDING_FILE = "audio.ogg"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 1)


@dataclass(kw_only=True)
class CallRecorder:
    """Listens to one `AgentSession`; per-turn EMF goes out as each reply is spoken."""

    session_id: str
    room: str
    job_id: str
    agent_type: str
    emf: EmfEmitter | None = None
    config_version: str | None = None
    agent_id: str | None = None
    agent_version: int | None = None
    # A caller turn not answered within this many seconds counts as unanswered; None: not counted.
    answer_timeout: float | None = None
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time, init=False)
    transcript: list[TranscriptEntry] = field(default_factory=list, init=False)
    turns: list[TurnLatency] = field(default_factory=list, init=False)
    # The user's end-of-utterance delay, until the reply that answers it.
    _last_user_eou: float | None = field(default=None, init=False)
    agent_errors: int = field(default=0, init=False)
    unanswered_turns: int = field(default=0, init=False)
    # When the caller's latest turn still waiting for an answer was added.
    _waiting_since: float | None = field(default=None, init=False)

    def attach(self, session: AgentSession[Any]) -> None:
        session.on("conversation_item_added", self.on_item_added)
        session.on("error", self.on_error)

    def _stop_waiting(self, at: float) -> None:
        since, self._waiting_since = self._waiting_since, None
        if (
            since is not None
            and self.answer_timeout is not None
            and at - since > self.answer_timeout
        ):
            self.unanswered_turns += 1

    def on_error(self, ev: ErrorEvent) -> None:
        if not getattr(ev.error, "recoverable", False):
            self.agent_errors += 1

    def on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = item.text_content or ""
        at = _iso(item.created_at)
        if text:
            self.transcript.append(TranscriptEntry(role=item.role, text=text, at=at))
        metrics: dict[str, Any] = dict(item.metrics or {})
        if item.role == "user":
            # The turn is over when its transcript arrives (its created_at is when it started);
            # a new turn ends the wait of the one before it.
            now = self.clock()
            self._stop_waiting(now)
            self._last_user_eou = metrics.get("end_of_turn_delay")
            self._waiting_since = now
            return
        # An agent message's created_at is when it started speaking: the answer.
        self._stop_waiting(item.created_at)
        turn = TurnLatency(
            at=at,
            end_of_utterance_delay_ms=_ms(self._last_user_eou),
            llm_ttft_ms=_ms(metrics.get("llm_node_ttft")),
            tts_ttfb_ms=_ms(metrics.get("tts_node_ttfb")),
            end_to_end_ms=_ms(metrics.get("e2e_latency")),
        )
        # A reply belongs to one user turn; the next reply (a greeting, a handoff) has no EOU.
        self._last_user_eou = None
        self.turns.append(turn)
        self._emit_turn(turn)

    def _emit_turn(self, turn: TurnLatency) -> None:
        if self.emf is None:
            return
        names = {
            "EndOfUtteranceDelay": turn.end_of_utterance_delay_ms,
            "LLMTimeToFirstToken": turn.llm_ttft_ms,
            "TTSTimeToFirstByte": turn.tts_ttfb_ms,
            "EndToEndLatency": turn.end_to_end_ms,
        }
        present = {n: (v, "Milliseconds") for n, v in names.items() if v is not None}
        if present:
            self.emf.emit(
                present,  # type: ignore[arg-type]
                self.dimensions,
                session_id=self.session_id,
                room=self.room,
                job_id=self.job_id,
            )

    @property
    def dimensions(self) -> dict[str, str] | None:
        """The `Agent` / `Version` dimensions a canary is compared with its baseline by."""
        return version_dimensions(self.agent_id, self.agent_version)

    def build_report(
        self, session: AgentSession[Any] | None, *, end_reason: str | None = None
    ) -> SessionReport:
        ended = time.time()
        self._stop_waiting(self.clock())
        return SessionReport(
            session_id=self.session_id,
            room=self.room,
            job_id=self.job_id,
            agent_type=self.agent_type,
            started_at=_iso(self.started_at),
            ended_at=_iso(ended),
            duration_s=round(ended - self.started_at, 3),
            transcript=list(self.transcript),
            turns=list(self.turns),
            usage=usage_of(session) if session is not None else Usage(),
            config_version=self.config_version,
            end_reason=end_reason,
            agent_id=self.agent_id,
            agent_version=self.agent_version,
            agent_errors=self.agent_errors,
            unanswered_turns=self.unanswered_turns,
        )


def version_dimensions(agent_id: str | None, version: int | None) -> dict[str, str] | None:
    if agent_id is None or version is None:
        return None
    return {"Agent": agent_id, "Version": str(version)}


def usage_of(session: AgentSession[Any]) -> Usage:
    usage = Usage()
    for model in session.usage.model_usage:
        if isinstance(model, STTModelUsage):
            usage.stt_audio_seconds += model.audio_duration
        elif isinstance(model, LLMModelUsage):
            usage.llm_prompt_tokens += model.input_tokens
            usage.llm_completion_tokens += model.output_tokens
        elif isinstance(model, TTSModelUsage):
            usage.tts_characters += model.characters_count
    usage.stt_audio_seconds = round(usage.stt_audio_seconds, 3)
    return usage


class ReportWriter:
    """Writes s3://<bucket>/reports/<id>.json, or <dir>/<id>.json when no bucket is set."""

    def __init__(self, *, bucket: str | None, directory: str, s3_client: Any = None) -> None:
        self.bucket = bucket
        self.directory = Path(directory)
        self._s3 = s3_client

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3  # deferred: a worker without a bucket never pays for it

            self._s3 = boto3.client("s3")
        return self._s3

    def write_recording(self, session_id: str, path: Path) -> str | None:
        """Stores the call's Ogg/Opus file beside its report; None when nothing was recorded."""
        if not path.exists() or path.stat().st_size == 0:
            return None
        key = recording_key(session_id)
        if self.bucket:
            self._client().upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": "audio/ogg"}
            )
            return f"s3://{self.bucket}/{key}"
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / Path(key).name
        target.write_bytes(path.read_bytes())
        return str(target)

    def write(self, report: SessionReport) -> str:
        body = report.model_dump_json(indent=2)
        key = report_key(report.session_id)
        if self.bucket:
            self._client().put_object(
                Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json"
            )
            return f"s3://{self.bucket}/{key}"
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / Path(key).name
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(body, encoding="utf-8")
        # Readers never see a half-written report.
        tmp.replace(path)
        return str(path)
