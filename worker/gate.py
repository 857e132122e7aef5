"""Before a call starts, the worker asks the sessions table whether the session may have an agent.

A caller's token recreates its room and dispatches the agent whenever it is used, also after the
session ended; the webhook closes such a room, and this check holds when that webhook is late or
lost. The worker reads one item with a read-only grant (GetItem on SESSION# keys): it never
imports the control plane.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from voice.table import GATE_NAMES, GATE_PROJECTION, JOIN_GRACE, SessionGate, session_key
from worker.settings import WorkerEnv

# How long a session the table does not know yet is looked for before the call is refused.
UNKNOWN_GRACE = timedelta(seconds=5)


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts: the check sits before the agent joins; a slow table must not hold it.
    return boto3.client(
        "dynamodb",
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2}),
    )


class SessionGateReader:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    @classmethod
    def from_env(cls, env: WorkerEnv) -> SessionGateReader | None:
        """None when the worker runs without a control plane (no SESSIONS_TABLE)."""
        return cls(dynamodb_client(), env.sessions_table) if env.sessions_table else None

    def admits(self, session_id: str) -> bool:
        """False for a session that is unknown, over, or past its join window.

        An unknown session is looked up again for `UNKNOWN_GRACE` first: an inbound phone call's
        session is written by the webhook of its SIP participant, which may trail the dispatch.
        """
        deadline = time.monotonic() + UNKNOWN_GRACE.total_seconds()
        while (item := self._read(session_id)) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        if item is None:
            return False
        return SessionGate.from_item(item).admits_agent(datetime.now(UTC), JOIN_GRACE)

    def _read(self, session_id: str) -> dict[str, Any] | None:
        resp = self._client.get_item(
            TableName=self._table,
            Key=session_key(session_id),
            ProjectionExpression=GATE_PROJECTION,
            ExpressionAttributeNames=GATE_NAMES,
            ConsistentRead=True,
        )
        return resp.get("Item")


def start_check(reader: SessionGateReader | None, session_id: str) -> asyncio.Future[bool] | None:
    """Starts the read on a thread at once, so it overlaps the call's set-up."""
    if reader is None:
        return None
    return asyncio.get_running_loop().run_in_executor(None, reader.admits, session_id)
