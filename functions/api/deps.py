"""FastAPI dependencies: the services, and the caller's user and account from `X-API-Key`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from functions.agents.service import AgentService
from functions.domain.models import Caller
from functions.sessions.customer_webhooks import CustomerWebhooks
from functions.sessions.livekit_events import LiveKitEventService
from functions.sessions.phone import PhoneService
from functions.sessions.service import SessionService
from functions.sessions.transcripts import CallReports
from functions.sessions.usage import UsageService
from functions.wiring import get_container


def _sessions() -> SessionService:
    return get_container().sessions


def _livekit_events() -> LiveKitEventService:
    return get_container().livekit_events


def _call_reports() -> CallReports:
    return get_container().call_reports


def _customer_webhooks() -> CustomerWebhooks:
    return get_container().customer_webhooks


def _phone() -> PhoneService:
    return get_container().phone


def _agents() -> AgentService:
    return get_container().agents


def _usage() -> UsageService:
    return get_container().usage


def _current_caller(x_api_key: Annotated[str | None, Header()] = None) -> Caller:
    return get_container().keys.caller(x_api_key)


def _current_user(caller: Annotated[Caller, Depends(_current_caller)]) -> str:
    return caller.user_id


Sessions = Annotated[SessionService, Depends(_sessions)]
LiveKitEvents = Annotated[LiveKitEventService, Depends(_livekit_events)]
Reports = Annotated[CallReports, Depends(_call_reports)]
Phone = Annotated[PhoneService, Depends(_phone)]
CustomerEvents = Annotated[CustomerWebhooks, Depends(_customer_webhooks)]
Agents = Annotated[AgentService, Depends(_agents)]
Usage = Annotated[UsageService, Depends(_usage)]
# One key lookup per request: FastAPI caches `_current_caller` for both.
CurrentCaller = Annotated[Caller, Depends(_current_caller)]
CurrentUser = Annotated[str, Depends(_current_user)]
