"""The FastAPI application of the control plane."""

from __future__ import annotations

from fastapi import FastAPI

from functions.api import playground
from functions.api.errors import AwsDeadline, BodySizeLimit, install_error_handlers
from functions.api.routes import router
from functions.settings import get_settings


def create_app() -> FastAPI:
    app = FastAPI(
        title="Real-time voice agents API",
        version="1.0.0",
        description="Create, read, list and end real-time voice sessions backed by LiveKit.",
    )
    app.include_router(router)
    app.include_router(playground.router)
    install_error_handlers(app)
    app.add_middleware(AwsDeadline, seconds=get_settings().aws_budget_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    return app


app = create_app()
