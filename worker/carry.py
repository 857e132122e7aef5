"""The conversation carried across a lost agent: kept in the room's metadata, which outlives it.

After each turn the agent writes the last turns (bounded, redacted per `privacy.redact`) to its
room's metadata. An agent sent into a room that holds them resumes: it starts with them in its
chat context and does not greet again.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterable
from typing import Any, Literal

import aiohttp
from livekit import api
from livekit.agents import llm
from pydantic import BaseModel, ConfigDict, ValidationError

from voice.privacy import redact
from worker.logs import logger
from worker.tasks import stop_task

# The room-metadata key; other keys of a JSON object there are kept as they are.
CARRY_KEY = "voice.carry"
MAX_TURNS = 12
MAX_TURN_CHARS = 600
# LiveKit caps metadata at 64 KiB by default; a carry stays far inside it.
MAX_CARRY_CHARS = 6000


class Turn(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    text: str


def carried(turns: Iterable[Turn], kinds: Iterable[str]) -> list[Turn]:
    """The turns a carry keeps: the latest ones, each redacted and cut, within the size cap."""
    chosen = list(kinds)
    kept = [
        Turn(role=t.role, text=redact(t.text, chosen)[:MAX_TURN_CHARS])
        for t in list(turns)[-MAX_TURNS:]
    ]
    while kept and sum(len(t.text) for t in kept) > MAX_CARRY_CHARS:
        kept.pop(0)
    return kept


def with_carry(metadata: str, turns: list[Turn]) -> str:
    """The room metadata with `turns` as its carry; a non-JSON metadata is replaced."""
    try:
        data = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[CARRY_KEY] = [t.model_dump() for t in turns]
    return json.dumps(data, separators=(",", ":"))


def read_carry(metadata: str | None) -> list[Turn]:
    """The turns a room's metadata carries; none for metadata without a (valid) carry."""
    try:
        data = json.loads(metadata) if metadata else None
    except json.JSONDecodeError:
        return []
    raw = data.get(CARRY_KEY) if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return []
    try:
        return [Turn.model_validate(t) for t in raw]
    except ValidationError:
        return []


def chat_context(turns: list[Turn]) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    for turn in turns:
        ctx.add_message(role=turn.role, content=turn.text)
    return ctx


class CarryWriter:
    """Writes the carry after each turn: one update in flight, the latest turns win."""

    def __init__(
        self,
        room: str,
        metadata: str,
        kinds: Iterable[str],
        *,
        turns: list[Turn] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._room = room
        self._metadata = metadata
        self._kinds = list(kinds)
        self._turns: list[Turn] = list(turns or [])
        self._ssl_context = ssl_context
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def on_item_added(self, ev: Any) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = item.text_content or ""
        if not text:
            return
        self._turns = [*self._turns, Turn(role=item.role, text=text)][-MAX_TURNS:]
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="carry_writer")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl_context) if self._ssl_context else None
        async with aiohttp.ClientSession(connector=connector) as http:
            try:
                lk = api.LiveKitAPI(session=http)
            except ValueError as exc:  # no server credentials in this process
                logger.warning("conversation not carried", room=self._room, error=str(exc))
                return
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                self._metadata = with_carry(self._metadata, carried(self._turns, self._kinds))
                request = api.UpdateRoomMetadataRequest(room=self._room, metadata=self._metadata)
                try:
                    await lk.room.update_room_metadata(request)
                    self.written += 1
                except Exception as exc:  # the next turn writes it again
                    logger.warning(
                        "conversation carry not written", room=self._room, error=repr(exc)
                    )
