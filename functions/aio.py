"""One reusable event loop per process for the sync Lambda entry points (Mangum uses the current one)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def event_loop() -> asyncio.AbstractEventLoop:
    """The current loop, or a new one set as current when there is none or it was closed."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    return event_loop().run_until_complete(coro)
