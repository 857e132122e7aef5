"""Builds settings, clients, stores and services once per process for every entry point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from functions.config_watch import watch_config
from functions.sessions.audit import Auditor
from functions.sessions.auth import ApiKeyService
from functions.sessions.reaper import Reaper
from functions.sessions.service import SessionService, utcnow
from functions.sessions.webhooks import WebhookService
from functions.settings import Settings, get_settings
from functions.store.dynamo import ApiKeyStore, AuditStore, SessionStore
from functions.store.livekit import LiveKitRooms, LiveKitTokens, LiveKitWebhooks
from functions.store.reports import ReportStore
from voice.config import get_config


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: SessionStore
    rooms: LiveKitRooms
    sessions: SessionService
    keys: ApiKeyService
    webhooks: WebhookService
    reaper: Reaper
    audit: Auditor


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: a slow table should become a 503, not a Lambda timeout.
    # A stalled table costs at most 2 attempts x (1 s + 2 s) per call (standard mode counts the
    # first attempt; legacy mode's max_attempts=3 meant 4 attempts, 20 s with a 5 s read timeout,
    # past the API function's 15 s timeout).
    return boto3.client(
        "dynamodb",
        config=Config(
            connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
        ),
    )


def build_container(settings: Settings, client: Any | None = None) -> Container:
    client = client or dynamodb_client()
    watch_config()
    store = SessionStore(client, settings.sessions_table)
    rooms = LiveKitRooms(settings.livekit, settings.livekit_timeout_seconds)
    reports = ReportStore(settings.reports_bucket)
    sessions = SessionService(
        store,
        rooms,
        LiveKitTokens(settings.livekit),
        get_config,
        utcnow,
        reports,
        settings.max_redispatch,
    )
    return Container(
        settings=settings,
        store=store,
        rooms=rooms,
        sessions=sessions,
        keys=ApiKeyService(ApiKeyStore(client, settings.sessions_table)),
        webhooks=WebhookService(sessions, store, rooms, LiveKitWebhooks(settings.livekit), utcnow),
        reaper=Reaper(sessions, utcnow),
        audit=Auditor(AuditStore(client, settings.sessions_table), store, rooms, sessions, utcnow),
    )


@lru_cache(maxsize=1)
def get_container() -> Container:
    return build_container(get_settings())
