"""The local API serves each request on its own event loop, as Lambda gives each its own
environment: a route that blocks inside `async def` (a stalled AWS call) holds up nobody else."""

from __future__ import annotations

import asyncio
import threading

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from infra.local.lambda_asgi import RequestPerLoop


def blocking_app(barrier: threading.Barrier) -> Starlette:
    async def meet(request: Request) -> JSONResponse:
        body = await request.json()
        # Blocks its loop until the other request arrives too: on one shared loop it never would.
        try:
            barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            return JSONResponse({"met": False, "echo": body}, status_code=504)
        return JSONResponse({"met": True, "echo": body, "thread": threading.get_ident()})

    return Starlette(routes=[Route("/meet", meet, methods=["POST"])])


async def both(app: object) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
        return list(
            await asyncio.gather(
                client.post("/meet", json={"n": 1}), client.post("/meet", json={"n": 2})
            )
        )


async def test_two_blocking_requests_are_served_side_by_side() -> None:
    responses = await both(RequestPerLoop(blocking_app(threading.Barrier(2))))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert sorted(r.json()["echo"]["n"] for r in responses) == [1, 2]  # bodies reach the app
    assert responses[0].json()["thread"] != responses[1].json()["thread"]


async def test_on_one_shared_loop_the_same_requests_queue() -> None:
    # The control for the test above: without the wrapper the first request holds the loop.
    responses = await both(blocking_app(threading.Barrier(2)))
    assert 504 in [r.status_code for r in responses]
