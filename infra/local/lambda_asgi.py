"""The control plane's ASGI app served as Lambda serves it: each request on its own event loop.

In AWS every API request has a Lambda execution environment to itself, so a handler that makes a
blocking AWS call inside an `async def` holds up nobody else. Under one uvicorn loop it would
hold up every request in flight (a stalled table would turn each 3 s budget into a queue of
them). Here each HTTP request runs on a worker thread's own loop, as Mangum runs it in Lambda
(`functions.aio.event_loop`), and only its body and response cross back to uvicorn's loop.

    uvicorn infra.local.lambda_asgi:app
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.aio import event_loop

# Lambda's default account concurrency is far above what a local stack sends; this only bounds
# the worker threads.
MAX_CONCURRENT_REQUESTS = 64


class RequestPerLoop:
    def __init__(self, app: ASGIApp, concurrency: int = MAX_CONCURRENT_REQUESTS) -> None:
        self.app = app
        self._limiter: anyio.CapacityLimiter | None = None
        self._concurrency = concurrency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and the like stay on uvicorn's loop
            await self.app(scope, receive, send)
            return
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._concurrency)

        uvicorn_loop = asyncio.get_running_loop()

        # Awaited, not blocked on: a middleware may wait for a disconnect while the route runs.
        async def receive_here() -> Message:
            return await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(receive(), uvicorn_loop)  # type: ignore[arg-type]
            )

        async def send_here(message: Message) -> None:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(send(message), uvicorn_loop)  # type: ignore[arg-type]
            )

        def serve() -> Any:
            return event_loop().run_until_complete(self.app(scope, receive_here, send_here))

        await anyio.to_thread.run_sync(serve, limiter=self._limiter)


def _app() -> RequestPerLoop:
    from functions.api.app import app as api

    return RequestPerLoop(api)


app = _app()
