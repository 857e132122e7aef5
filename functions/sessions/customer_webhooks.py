"""Customer webhooks: session events go into an outbox queue, then out signed, retried, at least once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from functions.domain.agents import Allocation
from functions.domain.events import OutboxMessage
from functions.domain.models import SessionRecord, SessionStatus, WebhookDelivery
from functions.observability import logger
from functions.sessions.ports import (
    AgentStorage,
    DeliveryLog,
    Outbox,
    SessionStorage,
    WebhookSender,
)
from functions.sessions.service import Clock
from functions.sessions.transcripts import CallReports
from functions.sessions.translate import translated
from functions.store.errors import StoreUnavailable
from voice.config import LoadedConfig
from voice.config.schema import WebhookSettings
from voice.report import SessionReport
from voice.webhooks import SIGNATURE_HEADER, WebhookEvent, event_id, sign

STARTED = "session.started"
ENDED = "session.ended"
FAILED = "session.failed"
ANALYZED = "session.analyzed"
ROLLED_BACK = "agent.rolled_back"
_FINAL_EVENT = {SessionStatus.ENDED: ENDED, SessionStatus.FAILED: FAILED}
# SQS delays a message by 15 minutes at most.
MAX_DELAY_SECONDS = 900

# Renders a session as GET /session/{id} does (the API's public model, injected by the wiring).
Present = Callable[[SessionRecord, dict[str, Any] | None], dict[str, Any]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from `base_seconds`, capped per wait, until `window_seconds` are spent."""

    base_seconds: int = 10
    # The last attempt happens at least this long after the first.
    window_seconds: int = 3600
    # The worker writes its report as the call closes, often after LiveKit's room_finished:
    # an ended event waits this long for it, polling, before it goes out without one.
    report_wait_seconds: int = 120
    report_poll_seconds: int = 3

    def delay(self, attempt: int) -> int:
        return min(MAX_DELAY_SECONDS, self.base_seconds * 2 ** max(attempt - 1, 0))

    def waited(self, attempts: int) -> int:
        """Seconds of backoff behind a message that has failed `attempts` times."""
        return sum(self.delay(a) for a in range(1, attempts + 1))

    def gives_up_after(self, attempts: int) -> bool:
        """Whether a message that failed `attempts` times has been tried for the whole window."""
        return self.waited(attempts - 1) >= self.window_seconds


@dataclass(frozen=True)
class CustomerWebhooks:
    """Emits session events into the outbox, and delivers what the outbox hands back."""

    store: SessionStorage
    reports: CallReports
    outbox: Outbox
    sender: WebhookSender
    config: Callable[[], LoadedConfig]
    clock: Clock
    present: Present
    secret: str | None
    retry: RetryPolicy = RetryPolicy()
    deliveries: DeliveryLog | None = None
    # Agent events read the allocation they announce, shown as GET .../traffic shows it.
    agents: AgentStorage | None = None
    present_traffic: Callable[[Allocation], dict[str, Any]] | None = None

    # -- emit (on the request path: never raises, never waits on the receiver) ---------------

    def started_if_ready(self, session_id: str) -> None:
        """`session.started` once the caller has joined and the agent is there (whichever last)."""
        rec = self._get(session_id)
        if rec and rec.status is SessionStatus.ACTIVE and rec.agent_joined_at is not None:
            self._emit(rec, STARTED)

    def finished(self, session_id: str) -> None:
        rec = self._get(session_id)
        if rec is not None and rec.status in _FINAL_EVENT:
            self._emit(rec, _FINAL_EVENT[rec.status])

    def analyzed(self, session_id: str) -> None:
        """`session.analyzed` once the call's post-call analysis is stored (or failed for good)."""
        rec = self._get(session_id)
        if rec is not None:
            self._emit(rec, ANALYZED)

    def rolled_back(self, alloc: Allocation) -> None:
        """`agent.rolled_back` for the allocation an automatic rollback put in force."""
        settings = self._settings()
        if settings is None or ROLLED_BACK not in settings.events:
            return
        message = OutboxMessage(
            event_id=event_id(f"{alloc.agent_id}/traffic/{alloc.revision}", ROLLED_BACK),
            type=ROLLED_BACK,
            agent_id=alloc.agent_id,
            revision=alloc.revision,
            created_at=self.clock(),
        )
        self._queue(message, {"agent_id": alloc.agent_id, "revision": alloc.revision})

    def _get(self, session_id: str) -> SessionRecord | None:
        try:
            return self.store.get(session_id, self.clock())
        except StoreUnavailable:
            logger.error("webhook event not emitted", extra={"session_id": session_id})
            return None

    def _emit(self, rec: SessionRecord, event_type: str) -> None:
        settings = self._settings()
        if settings is None or event_type not in settings.events:
            return
        # The id is the session's and the type's: a second emit of it is a duplicate to drop.
        message = OutboxMessage(
            event_id=event_id(rec.session_id, event_type),
            type=event_type,
            session_id=rec.session_id,
            created_at=self.clock(),
        )
        self._queue(message, {"session_id": rec.session_id})

    def _queue(self, message: OutboxMessage, log: dict[str, Any]) -> None:
        log = log | {"event": message.type, "event_id": message.event_id}
        try:
            self.outbox.send(message)
            logger.info("webhook event queued", extra=log)
        except StoreUnavailable as exc:
            logger.error("webhook event not queued", extra=log | {"why": str(exc)})

    def _settings(self) -> WebhookSettings | None:
        try:
            webhooks = self.config().config.realtime.webhooks
        except Exception:  # a broken config must not break the call that emits
            logger.exception("webhook settings unreadable")
            return None
        return webhooks if webhooks.url else None

    # -- deliver (the outbox consumer) --------------------------------------------------------

    def deliver(self, message: OutboxMessage) -> str:
        """One delivery attempt; what happened, for logs and metrics. Raises only when the
        outbox itself is unreachable (the queue then hands the message back)."""
        log = {"session_id": message.session_id, "event_id": message.event_id}
        settings = self._settings()
        if message.agent_id is not None:
            return self._deliver_agent_event(message, settings, log)
        rec = self.store.get(message.session_id, self.clock())
        if settings is None or rec is None:
            return "dropped"
        if self._dead_lettered_without_secret(message, log):
            return "dead_lettered"

        report = None
        if message.type == ANALYZED:
            report = self.reports.read(message.session_id)
        elif message.type in (ENDED, FAILED):
            report = self.reports.read(message.session_id)
            waited = self.clock() - message.created_at
            if report is None and waited < timedelta(seconds=self.retry.report_wait_seconds):
                self.outbox.send(message, self.retry.report_poll_seconds)
                return "waiting_for_report"

        return self._post(message, self._body(message, rec, report), settings, log)

    def _deliver_agent_event(
        self, message: OutboxMessage, settings: WebhookSettings | None, log: dict[str, Any]
    ) -> str:
        assert message.agent_id is not None and message.revision is not None
        alloc = None
        if settings is not None and self.agents is not None and self.present_traffic is not None:
            alloc = self.agents.allocation(message.agent_id, message.revision)
        if settings is None or alloc is None or self.present_traffic is None:
            return "dropped"
        if self._dead_lettered_without_secret(message, log):
            return "dead_lettered"
        event = WebhookEvent(
            id=message.event_id,
            type=message.type,
            created_at=message.created_at.isoformat(),
            traffic=self.present_traffic(alloc),
        )
        body = event.model_dump_json(exclude_none=True).encode()
        return self._post(message, body, settings, log | {"agent_id": message.agent_id})

    def _dead_lettered_without_secret(self, message: OutboxMessage, log: dict[str, Any]) -> bool:
        if self.secret:
            return False
        logger.error("VOICE_WEBHOOK_SECRET is not set: webhook dead-lettered", extra=log)
        self.outbox.dead_letter(message)
        return True

    def _post(
        self, message: OutboxMessage, body: bytes, settings: WebhookSettings, log: dict[str, Any]
    ) -> str:
        """One POST; on failure, the retry or the dead letter the policy says."""
        failure = self.sender.post(
            str(settings.url),
            body,
            {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret or "", body)},
            settings.timeout_seconds,
        )
        if failure is None:
            logger.info("webhook delivered", extra=log | {"attempt": message.attempt + 1})
            return self._recorded(message, "delivered")

        attempts = message.attempt + 1
        log |= {"attempt": attempts, "why": failure}
        if self.retry.gives_up_after(attempts):
            logger.error("webhook delivery gave up: dead-lettered", extra=log)
            self.outbox.dead_letter(message.model_copy(update={"attempt": attempts}))
            return self._recorded(message, "dead_lettered", failure)
        delay = self.retry.delay(attempts)
        logger.warning("webhook delivery failed: retrying", extra=log | {"in_seconds": delay})
        self.outbox.send(message.model_copy(update={"attempt": attempts}), delay)
        return self._recorded(message, "retrying", failure)

    def _recorded(self, message: OutboxMessage, outcome: str, detail: str | None = None) -> str:
        """Keeps the attempt for the call console; a table that cannot take it loses only that."""
        if self.deliveries is not None:
            attempt = WebhookDelivery(
                event_id=message.event_id,
                type=message.type,
                attempt=message.attempt + 1,
                outcome=outcome,
                at=self.clock(),
                detail=detail,
            )
            try:
                self.deliveries.record(message.session_id, attempt)
            except StoreUnavailable:
                logger.warning(
                    "webhook delivery not recorded",
                    extra={"session_id": message.session_id, "event_id": message.event_id},
                )
        return outcome

    @translated
    def history(self, session_id: str) -> list[WebhookDelivery]:
        """The session's delivery attempts, oldest first (none where nothing records them)."""
        return self.deliveries.list(session_id) if self.deliveries is not None else []

    def _body(
        self, message: OutboxMessage, rec: SessionRecord, report: SessionReport | None
    ) -> bytes:
        usage = report.usage.model_dump() | {"turns": len(report.turns)} if report else None
        event = WebhookEvent(
            id=message.event_id,
            type=message.type,
            created_at=message.created_at.isoformat(),
            session=self.present(rec, usage),
            # session.analyzed carries the session (its `analysis` is the news), not the report
            # that session.ended already delivered.
            report=self.reports.public(rec, report)
            if report and message.type != ANALYZED
            else None,
        )
        return event.model_dump_json(exclude_none=message.type == STARTED).encode()
