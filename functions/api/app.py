"""The FastAPI application of the control plane."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from functions.api import agent_routes, playground
from functions.api.errors import AwsDeadline, BodySizeLimit, install_error_handlers
from functions.api.routes import API_PREFIX, router
from functions.settings import get_settings
from functions.tracing import TraceCreates


def create_app() -> FastAPI:
    app = FastAPI(
        title="Real-time voice agents API",
        version="1.0.0",
        description="Create, read, list and end real-time voice sessions backed by LiveKit.",
        # Under the API's own prefix: API Gateway routes only /voice/realtime/... to the function.
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_at_root() -> JSONResponse:
        # The same document where local tools look for it first.
        return JSONResponse(app.openapi())

    app.include_router(router)
    app.include_router(agent_routes.router)
    app.include_router(playground.router)
    install_error_handlers(app)
    # The last added runs first. The create's span sits inside the AWS budget: finding out
    # whether to trace may refresh the config from S3, which must not outlast the budget.
    app.add_middleware(TraceCreates)
    app.add_middleware(AwsDeadline, seconds=get_settings().aws_budget_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    return app


app = create_app()
