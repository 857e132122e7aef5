"""A worker fleet's capacity as the control plane sees it: heartbeats written as a worker writes them."""

from __future__ import annotations

from typing import Any

from worker.heartbeat import VALID_INTERVALS, HeartbeatWriter

AGENT_NAME = "openagents-voice"
AN_HOUR = 3600.0


def report_capacity(
    dynamodb: Any,
    table: str,
    free: int,
    total: int | None = None,
    worker_id: str = "test-fleet",
    valid_for: float = AN_HOUR,
    agent_name: str = AGENT_NAME,
) -> None:
    """One worker's heartbeat, valid for `valid_for` seconds; `free=0` reports it full."""
    writer = HeartbeatWriter(dynamodb, table, agent_name, interval=valid_for / VALID_INTERVALS)
    writer.write(worker_id, free, free if total is None else total)


def withdraw(dynamodb: Any, table: str, worker_id: str = "test-fleet") -> None:
    """Removes a worker's heartbeat, as if it had never reported in."""
    from voice.table import fleet_pk

    dynamodb.delete_item(
        TableName=table, Key={"pk": {"S": fleet_pk(worker_id)}, "sk": {"S": f"WORKER#{worker_id}"}}
    )
