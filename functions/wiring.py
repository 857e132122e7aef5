"""Builds settings, clients, stores and services once per process for every entry point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from functions.agents.rollout import RolloutMonitor
from functions.agents.service import AgentService
from functions.api.agent_schemas import TrafficPublic
from functions.api.schemas import SessionPublic
from functions.config_watch import watch_config
from functions.domain.models import SessionRecord
from functions.sessions.admission import Admission
from functions.sessions.analysis import CallAnalyst
from functions.sessions.audit import Auditor
from functions.sessions.auth import ApiKeyService
from functions.sessions.authority import RoomGuard
from functions.sessions.customer_webhooks import CustomerWebhooks, RetryPolicy
from functions.sessions.livekit_events import LiveKitEventService
from functions.sessions.phone import PhoneService
from functions.sessions.reaper import Reaper
from functions.sessions.service import SessionService, utcnow
from functions.sessions.transcripts import CallReports
from functions.sessions.usage import UsageService
from functions.sessions.watchdog import AgentWatchdog
from functions.settings import Settings, get_settings
from functions.store.dynamo import (
    AccountStore,
    AgentStore,
    ApiKeyStore,
    AuditStore,
    DeliveryStore,
    FleetStore,
    SessionStore,
)
from functions.store.dynamo.analysis import AnalysisStore
from functions.store.livekit import LiveKitRooms, LiveKitTokens, LiveKitWebhooks, livekit_api
from functions.store.outbox import SqsOutbox
from functions.store.reports import ReportStore
from functions.store.sqs import SqsAgentChecks
from functions.store.webhook_sender import HttpWebhookSender
from voice.aws_budget import budgeted
from voice.config import get_config, reset_config_cache


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: SessionStore
    rooms: LiveKitRooms
    sessions: SessionService
    keys: ApiKeyService
    livekit_events: LiveKitEventService
    reaper: Reaper
    admission: Admission
    call_reports: CallReports
    customer_webhooks: CustomerWebhooks
    audit: Auditor
    phone: PhoneService
    agents: AgentService
    rollout: RolloutMonitor
    analyses: AnalysisStore
    usage: UsageService
    watchdog: AgentWatchdog | None = None

    def analyst(self) -> CallAnalyst:
        """Post-call analysis, for the function the stored reports trigger (built on first use)."""
        from functions.store.analyst_model import OpenAIAnalyst

        return CallAnalyst(
            store=self.store,
            reports=self.call_reports,
            results=self.analyses,
            model=OpenAIAnalyst(self.settings.openai_api_key),
            config=get_config,
            clock=utcnow,
            on_analyzed=self.customer_webhooks.analyzed,
            agents=self.customer_webhooks.agents,
        )


# Per attempt; within an API request the read timeout is cut to what is left of its DynamoDB
# budget (Settings.aws_budget_seconds, voice/aws_budget.py).
_CONNECT_TIMEOUT = 1.0
_READ_TIMEOUT = 2.0


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and one retry: a slow table should become a 503, not a Lambda timeout.
    # Standard mode counts the first attempt (legacy mode's max_attempts=3 meant 4 attempts).
    client = boto3.client(
        "dynamodb",
        config=Config(
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
            retries={"mode": "standard", "max_attempts": 2},
        ),
    )
    return budgeted(client)


def sqs_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3})
    )


def build_container(settings: Settings, client: Any | None = None) -> Container:
    client = client or dynamodb_client()
    watch_config()
    store = SessionStore(client, settings.sessions_table)
    agent_store = AgentStore(client, settings.sessions_table)
    agents = AgentService(agent_store, get_config, utcnow)
    rooms = LiveKitRooms(settings.livekit, settings.livekit_timeout_seconds)
    reports = ReportStore(settings.reports_bucket)
    admission = Admission(FleetStore(client, settings.sessions_table))
    analyses = AnalysisStore(client, settings.sessions_table)
    call_reports = CallReports(reports, get_config, analyses)
    customer_webhooks = customer_webhooks_for(settings, store, call_reports, agent_store, client)
    sessions = SessionService(
        store,
        rooms,
        LiveKitTokens(settings.livekit),
        get_config,
        utcnow,
        reports,
        admission,
        on_finished=customer_webhooks.finished,
        agents=agents,
    )
    watchdog = None
    if settings.agent_watchdog_queue_url:
        queue = SqsAgentChecks(sqs_client, settings.agent_watchdog_queue_url)
        watchdog = AgentWatchdog(sessions, store, rooms, queue, utcnow)
    phone = phone_service(settings, sessions, store, rooms)
    return Container(
        settings=settings,
        store=store,
        rooms=rooms,
        sessions=sessions,
        keys=ApiKeyService(ApiKeyStore(client, settings.sessions_table)),
        livekit_events=LiveKitEventService(
            sessions,
            store,
            rooms,
            LiveKitWebhooks(settings.livekit),
            utcnow,
            guard=RoomGuard(sessions, store, rooms),
            watchdog=watchdog,
            on_joined=customer_webhooks.started_if_ready,
            phone=phone,
        ),
        reaper=Reaper(sessions, utcnow),
        admission=admission,
        call_reports=call_reports,
        analyses=analyses,
        customer_webhooks=customer_webhooks,
        watchdog=watchdog,
        phone=phone,
        agents=agents,
        rollout=RolloutMonitor(
            agents,
            agent_store,
            store,
            reports,
            get_config,
            utcnow,
            on_rolled_back=customer_webhooks.rolled_back,
        ),
        audit=Auditor(AuditStore(client, settings.sessions_table), store, rooms, sessions, utcnow),
        usage=UsageService(AccountStore(client, settings.sessions_table), get_config, utcnow),
    )


def customer_webhooks_for(
    settings: Settings,
    store: SessionStore,
    call_reports: CallReports,
    agents: AgentStore,
    client: Any,
) -> CustomerWebhooks:
    def present(rec: SessionRecord, usage: dict[str, Any] | None) -> dict[str, Any]:
        # The webhook's session is exactly what GET /session/{id} answers.
        public = SessionPublic.of(
            rec, usage, call_reports.recording_url(rec), call_reports.analysis(rec)
        )
        return public.model_dump(mode="json")

    return CustomerWebhooks(
        store=store,
        reports=call_reports,
        outbox=SqsOutbox(settings.webhook_queue_url, settings.webhook_dlq_url),
        sender=HttpWebhookSender(),
        config=get_config,
        clock=utcnow,
        present=present,
        agents=agents,
        # The webhook's traffic is exactly what GET /agents/{id}/traffic answers.
        present_traffic=lambda alloc: TrafficPublic.of(alloc).model_dump(mode="json"),
        secret=settings.webhook_secret,
        deliveries=DeliveryStore(client, settings.sessions_table),
        retry=RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            window_seconds=settings.webhook_retry_window_seconds,
            report_wait_seconds=settings.webhook_report_wait_seconds,
        ),
    )


def phone_service(
    settings: Settings, sessions: SessionService, store: SessionStore, rooms: LiveKitRooms
) -> PhoneService:
    from functions.store.phone_calls import LiveKitPhone

    timeout = settings.livekit_timeout_seconds
    return PhoneService(
        sessions,
        store,
        rooms,
        LiveKitPhone(lambda: livekit_api(settings.livekit, timeout)),
        utcnow,
        allow_sip_uris=settings.environment == "local",
    )


@lru_cache(maxsize=1)
def get_container() -> Container:
    return build_container(get_settings())


def forget_process_state() -> None:
    """Drops what is built once per process (settings with the LiveKit secret, AWS clients,
    services, the config), so the next request builds it again from the environment."""
    get_settings.cache_clear()
    get_container.cache_clear()
    reset_config_cache()
