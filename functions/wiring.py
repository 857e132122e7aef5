"""Builds settings, clients, stores and services once per process for every entry point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from functions.sessions.auth import ApiKeyService
from functions.sessions.phone import PhoneService
from functions.sessions.reaper import Reaper
from functions.sessions.service import SessionService, utcnow
from functions.sessions.webhooks import WebhookService
from functions.settings import Settings, get_settings
from functions.store.dynamo import ApiKeyStore, SessionStore
from functions.store.livekit import LiveKitRooms, LiveKitTokens, LiveKitWebhooks, livekit_api
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
    phone: PhoneService


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: a slow table should become a 503, not a Lambda timeout.
    return boto3.client(
        "dynamodb",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3}),
    )


def build_container(settings: Settings, client: Any | None = None) -> Container:
    client = client or dynamodb_client()
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
    phone = phone_service(settings, sessions, store, rooms)
    return Container(
        settings=settings,
        store=store,
        rooms=rooms,
        sessions=sessions,
        keys=ApiKeyService(ApiKeyStore(client, settings.sessions_table)),
        webhooks=WebhookService(
            sessions, store, rooms, LiveKitWebhooks(settings.livekit), utcnow, phone
        ),
        reaper=Reaper(sessions, utcnow),
        phone=phone,
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
