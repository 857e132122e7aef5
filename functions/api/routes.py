"""Routes under /voice/realtime: thin handlers that parse, call one service method, and return."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response, status

from functions.api.deps import (
    CurrentCaller,
    CurrentUser,
    CustomerEvents,
    LiveKitEvents,
    Phone,
    Reports,
    Sessions,
    Usage,
)
from functions.api.schemas import (
    CallCreate,
    CallCreated,
    ConfigHealth,
    ErrorBody,
    HealthResponse,
    SessionCreate,
    SessionCreated,
    SessionPage,
    SessionPublic,
    TranscriptPublic,
    UsagePublic,
    WebhookAck,
    WebhookDeliveries,
    WebhookDeliveryPublic,
)
from functions.domain.errors import FleetAtCapacity, InvalidRequest, SessionLimitReached
from functions.observability import metrics
from functions.sessions.new_session import NewSession
from functions.sessions.phone import NewCall
from functions.wiring import get_container
from voice.config import config_status, redact

API_PREFIX = "/voice/realtime"
router = APIRouter(prefix=API_PREFIX)
# Webhook outcomes of phone calls that the alarms and the dashboard count.
PHONE_METRICS = {
    "call_failed": "OutboundCallsFailed",
    "answered": "OutboundCallsAnswered",
    "refused: over limit": "InboundCallsRefused",
    "refused: unknown number": "InboundCallsRefused",
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 413, 422, 429, 503)
}


@router.post(
    "/session",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionCreated,
    responses=_ERRORS,
)
def create_session(
    caller: CurrentCaller,
    sessions: Sessions,
    response: Response,
    body: Annotated[SessionCreate | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(description="a retried create with the same key and body returns the same session"),
    ] = None,
) -> SessionCreated:
    # No body at all means "all defaults from the config", like an empty JSON object.
    request = body or SessionCreate()
    try:
        created = sessions.create(
            caller.user_id, NewSession(**request.model_dump()), idempotency_key, caller.account_id
        )
    except SessionLimitReached:
        metrics.add_metric(name="SessionLimitRejected", unit="Count", value=1)
        raise
    except FleetAtCapacity:
        metrics.add_metric(name="AdmissionRejected", unit="Count", value=1)
        raise
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        metrics.add_metric(name="SessionCreatesReplayed", unit="Count", value=1)
    else:
        metrics.add_metric(name="SessionsCreated", unit="Count", value=1)
    return SessionCreated.model_validate(
        created.record.model_dump() | {"token": created.token, "url": created.url}
    )


@router.post(
    "/call",
    status_code=status.HTTP_201_CREATED,
    response_model=CallCreated,
    responses=_ERRORS | {502: {"model": ErrorBody}},
)
async def place_call(
    caller: CurrentCaller,
    phone: Phone,
    body: CallCreate,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(description="a retried call with the same key and body returns the same session"),
    ] = None,
) -> CallCreated:
    try:
        rec, replayed = await phone.call(
            caller.user_id, NewCall(**body.model_dump()), idempotency_key, caller.account_id
        )
    except SessionLimitReached:
        metrics.add_metric(name="SessionLimitRejected", unit="Count", value=1)
        raise
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.add_metric(name="OutboundCallsPlaced", unit="Count", value=1)
    return CallCreated(session_id=rec.session_id, room_name=rec.room_name, status=rec.shown_status)


@router.get("/session/{session_id}", response_model=SessionPublic, responses=_ERRORS)
def get_session(
    session_id: str, user: CurrentUser, sessions: Sessions, reports: Reports
) -> SessionPublic:
    rec = sessions.get(user, session_id)
    recording = reports.recording_url(rec)
    return SessionPublic.of(rec, sessions.report_usage(rec), recording, reports.analysis(rec))


@router.get("/session/{session_id}/transcript", response_model=TranscriptPublic, responses=_ERRORS)
def get_transcript(
    session_id: str, user: CurrentUser, sessions: Sessions, reports: Reports
) -> TranscriptPublic:
    rec = sessions.get(user, session_id)
    report = reports.transcript(rec)
    return TranscriptPublic.model_validate(report.model_dump() | {"session_id": rec.session_id})


@router.get("/session/{session_id}/webhooks", response_model=WebhookDeliveries, responses=_ERRORS)
def get_webhook_deliveries(
    session_id: str, user: CurrentUser, sessions: Sessions, events: CustomerEvents
) -> WebhookDeliveries:
    """The customer-webhook deliveries of one session: every attempt and what came of it."""
    rec = sessions.get(user, session_id)
    return WebhookDeliveries(
        session_id=rec.session_id,
        deliveries=[
            WebhookDeliveryPublic.model_validate(d.model_dump())
            for d in events.history(rec.session_id)
        ],
    )


@router.delete("/session/{session_id}", response_model=SessionPublic, responses=_ERRORS)
async def end_session(session_id: str, user: CurrentUser, sessions: Sessions) -> SessionPublic:
    rec, ended = await sessions.end(user, session_id)
    if ended:
        metrics.add_metric(name="SessionsEnded", unit="Count", value=1)
    return SessionPublic.of(rec, sessions.report_usage(rec))


@router.get("/sessions", response_model=SessionPage, responses=_ERRORS)
def list_sessions(
    user: CurrentUser,
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> SessionPage:
    records, next_cursor = sessions.list(user, limit, cursor)
    return SessionPage(sessions=[SessionPublic.of(r) for r in records], next_cursor=next_cursor)


DAY = r"^\d{4}-\d{2}-\d{2}$"


@router.get("/usage", response_model=UsagePublic, responses=_ERRORS)
def get_usage(
    caller: CurrentCaller,
    usage: Usage,
    first: Annotated[
        str | None,
        Query(
            alias="from", pattern=DAY, description="first day, YYYY-MM-DD (UTC); default to - 29"
        ),
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", pattern=DAY, description="last day (UTC); default today")
    ] = None,
) -> UsagePublic:
    """Your account's live sessions and limit now, and its call minutes per day and agent version."""
    return UsagePublic.of(usage.usage(caller, _day("from", first), _day("to", last)))


def _day(name: str, value: str | None) -> date | None:
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: '{value}' is not a day; send YYYY-MM-DD") from exc


@router.get("/config", responses=_ERRORS)
def get_config(user: CurrentUser, sessions: Sessions) -> dict[str, Any]:
    loaded = sessions.loaded_config()
    voice = loaded.config.voice.model_dump(mode="json")
    return redact(
        {
            "config_version": loaded.version,
            "source": loaded.source,
            "livekit_url": get_container().settings.livekit_url,
            "realtime": voice["realtime"],
            "providers": voice["providers"],
            "voice_profiles": voice["voice_profiles"],
        }
    )


@router.get("/health", response_model=HealthResponse)
async def health(sessions: Sessions) -> HealthResponse:
    h = await sessions.health()
    return HealthResponse.model_validate(
        asdict(h)
        | {
            "status": h.status,
            "timestamp": datetime.now(UTC),
            "config": ConfigHealth.of(config_status()),
        }
    )


@router.post("/livekit/webhook", response_model=WebhookAck, responses=_ERRORS)
async def livekit_webhook(
    request: Request, events: LiveKitEvents, authorization: Annotated[str | None, Header()] = None
) -> WebhookAck:
    token = authorization.removeprefix("Bearer ").strip() if authorization else None
    outcome = await events.receive(await request.body(), token)
    if outcome.action in ("ended", "failed"):
        name = "SessionsFailed" if outcome.action == "failed" else "SessionsEnded"
        metrics.add_metric(name=name, unit="Count", value=1)
    phone_metric = PHONE_METRICS.get(outcome.action)
    if phone_metric:
        metrics.add_metric(name=phone_metric, unit="Count", value=1)
    return WebhookAck(session_id=outcome.session_id, action=outcome.action)
