"""A local stand-in for the ECS agent's task-protection endpoint ($ECS_AGENT_URI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from infra.local.stack import HOST


class EcsAgent:
    """Records each PUT body to /task-protection/v1/state; refuses them while `refuse` is set."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refuse = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.refuse:
            return web.json_response({"failure": {"Reason": "TASK_NOT_FOUND"}}, status=400)
        return web.json_response({"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}})


@asynccontextmanager
async def serve_ecs_agent() -> AsyncIterator[tuple[EcsAgent, str]]:
    """The stand-in on a free loopback port, and the URI ECS would put in $ECS_AGENT_URI."""
    agent = EcsAgent()
    app = web.Application()
    app.router.add_put("/api/task/task-protection/v1/state", agent.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    port = runner.addresses[0][1]
    try:
        yield agent, f"http://{HOST}:{port}/api/task"
    finally:
        await runner.cleanup()
