"""Builds settings, clients, stores and services once per process for every entry point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from functions.sessions.admission import Admission
from functions.sessions.auth import ApiKeyService
from functions.sessions.authority import RoomGuard
from functions.sessions.reaper import Reaper
from functions.sessions.service import SessionService, utcnow
from functions.sessions.watchdog import AgentWatchdog
from functions.sessions.webhooks import WebhookService
from functions.settings import Settings, get_settings
from functions.store.dynamo import ApiKeyStore, FleetStore, SessionStore
from functions.store.livekit import LiveKitRooms, LiveKitTokens, LiveKitWebhooks
from functions.store.reports import ReportStore
from functions.store.sqs import SqsAgentChecks
from voice.config import get_config, reset_config_cache


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: SessionStore
    rooms: LiveKitRooms
    sessions: SessionService
    keys: ApiKeyService
    webhooks: WebhookService
    reaper: Reaper
    admission: Admission
    watchdog: AgentWatchdog | None = None


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: a slow table should become a 503, not a Lambda timeout.
    return boto3.client(
        "dynamodb",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3}),
    )


def sqs_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3})
    )


def build_container(settings: Settings, client: Any | None = None) -> Container:
    client = client or dynamodb_client()
    store = SessionStore(client, settings.sessions_table)
    rooms = LiveKitRooms(settings.livekit, settings.livekit_timeout_seconds)
    reports = ReportStore(settings.reports_bucket)
    admission = Admission(FleetStore(client, settings.sessions_table))
    sessions = SessionService(
        store,
        rooms,
        LiveKitTokens(settings.livekit),
        get_config,
        utcnow,
        reports,
        settings.max_redispatch,
        admission,
    )
    watchdog = None
    if settings.agent_watchdog_queue_url:
        queue = SqsAgentChecks(sqs_client, settings.agent_watchdog_queue_url)
        watchdog = AgentWatchdog(sessions, store, rooms, queue, utcnow)
    return Container(
        settings=settings,
        store=store,
        rooms=rooms,
        sessions=sessions,
        keys=ApiKeyService(ApiKeyStore(client, settings.sessions_table)),
        webhooks=WebhookService(
            sessions,
            store,
            rooms,
            LiveKitWebhooks(settings.livekit),
            utcnow,
            guard=RoomGuard(sessions, store, rooms),
            watchdog=watchdog,
        ),
        reaper=Reaper(sessions, utcnow),
        admission=admission,
        watchdog=watchdog,
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
