"""Ends a job whose room vanishes while the agent is still joining, instead of holding its slot."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any

import aiohttp
from livekit import api
from livekit.agents import JobContext

from worker.logs import logger

# How often the room's existence is checked while joining: one small API call per interval.
ROOM_POLL_SECONDS = 0.5


async def room_gone(ctx: JobContext, lk: api.LiveKitAPI, poll: float = ROOM_POLL_SECONDS) -> str:
    """Returns once the room is deleted or the agent's connection drops; says which."""
    disconnected = asyncio.Event()

    def on_disconnected(*_: object) -> None:
        disconnected.set()

    ctx.room.on("disconnected", on_disconnected)
    request = api.ListRoomsRequest(names=[ctx.room.name])
    try:
        while True:
            # A connection still being set up never reports the deletion: ask the server.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(disconnected.wait(), poll)
                return "room disconnected"
            try:
                rooms = await lk.room.list_rooms(request)
            except Exception as exc:  # the server is briefly unreachable: keep joining
                logger.debug("room check failed", room=ctx.room.name, error=str(exc))
                continue
            if not rooms.rooms:
                return "room deleted"
    finally:
        ctx.room.off("disconnected", on_disconnected)


async def unless_room_gone(
    ctx: JobContext,
    joining: Coroutine[Any, Any, None],
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> bool:
    """Runs `joining`; if the room goes first, cancels it and ends the job. True when it joined.

    Without this a job whose caller hung up at once waits ~15 s for its peer connection and
    another 15 s for the library to give up on the entrypoint, holding a paid slot all along.
    """
    # Its own HTTP session on the prewarmed SSL context: the job's shared one would build a
    # context on this loop. Credentials come from the env the worker exports to its jobs.
    connector = aiohttp.TCPConnector(ssl=ssl_context) if ssl_context else None
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            lk = api.LiveKitAPI(session=http)
        except ValueError as exc:  # no server credentials in this process: join unwatched
            logger.warning("cannot watch the room while joining", error=str(exc))
            await joining
            return True
        join = asyncio.create_task(joining, name="join_call")
        watch = asyncio.create_task(room_gone(ctx, lk), name="watch")
        try:
            await asyncio.wait({join, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not join.done():
                # The room went first (or this job is being cancelled): stop joining.
                join.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await join
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
    if not join.cancelled():
        join.result()  # re-raises what the join raised
        return True
    reason = f"{watch.result()} while joining"
    logger.info("ending job", room=ctx.room.name, reason=reason)
    ctx.shutdown(reason=reason)
    return False
