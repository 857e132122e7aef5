"""FastAPI dependencies: the services, and the caller's user id from `X-API-Key`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from functions.agents.service import AgentService
from functions.sessions.phone import PhoneService
from functions.sessions.service import SessionService
from functions.sessions.transcripts import CallReports
from functions.sessions.webhooks import WebhookService
from functions.wiring import get_container


def _sessions() -> SessionService:
    return get_container().sessions


def _webhooks() -> WebhookService:
    return get_container().webhooks


def _call_reports() -> CallReports:
    return get_container().call_reports


def _phone() -> PhoneService:
    return get_container().phone


def _agents() -> AgentService:
    return get_container().agents


def _current_user(x_api_key: Annotated[str | None, Header()] = None) -> str:
    return get_container().keys.authenticate(x_api_key)


Sessions = Annotated[SessionService, Depends(_sessions)]
Webhooks = Annotated[WebhookService, Depends(_webhooks)]
Reports = Annotated[CallReports, Depends(_call_reports)]
Phone = Annotated[PhoneService, Depends(_phone)]
Agents = Annotated[AgentService, Depends(_agents)]
CurrentUser = Annotated[str, Depends(_current_user)]
