"""Maps every failure to a JSON `{error, message}` body; bad input never becomes a 500."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.domain.errors import DomainError
from functions.observability import logger
from voice.aws_budget import BudgetSpent, aws_budget

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def error_response(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": error, "message": message}, headers=headers
    )


def _describe(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
    field = ".".join(loc) or "body"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"{field}: is not a known field"
    if kind == "json_invalid":
        return "body: is not valid JSON"
    if kind == "model_attributes_type":
        return "body: must be a JSON object"
    msg = err.get("msg", "is invalid")
    return f"{field}: {msg[:1].lower()}{msg[1:]}"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette reports only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods.update(route_methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [_describe(e) for e in exc.errors()]
        return error_response(422, "validation_error", "; ".join(messages) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 400:
            # FastAPI's only 400 is a body it could not decode: the same class of error as bad JSON.
            return error_response(
                422, "validation_error", "body: could not be read; send a UTF-8 JSON object"
            )
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            allowed = _allowed_methods(request)
            message = (
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
            )
            return error_response(405, code, message, {"Allow": ", ".join(allowed)})
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(BudgetSpent)
    async def _budget(_: Request, exc: BudgetSpent) -> JSONResponse:
        # Stores translate it; this catches a call made outside a store's error guard.
        return error_response(503, "dependency_unavailable", str(exc), {"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")


class AwsDeadline:
    """Gives each request one AWS budget: past it, the request answers 503 at once."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with aws_budget(self.seconds):
            await self.app(scope, receive, send)


class BodySizeLimit:
    """Rejects request bodies over `max_bytes` with 413 before any route parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body is over the {self.max_bytes}-byte cap; send a smaller body",
        )
        await response(scope, receive, send)
