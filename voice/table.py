"""Sessions-table items both planes touch: the session gate (worker reads) and heartbeats (API reads).

Plain typed attribute dicts, so neither plane needs the other's code.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

SESSION_SK = "SESSION"
FLEET_PK = "FLEET"
# Partition-key values written by every session or worker (the by-state index's `STATE#…` and
# `CLEANUP`, the heartbeats' `FLEET`) are split this many ways by a hash of the session or
# worker id, so no key value's write rate grows with total traffic (DynamoDB serves about
# 1,000 writes/s per key value). Readers query every shard, and the unsuffixed key too: items
# written before the split keep it until their next state change (docs/scale.md).
KEY_SHARDS = 16
# Heartbeats stay readable this long after they lapse (for a post-mortem), then TTL collects them.
HEARTBEAT_RETENTION = timedelta(hours=1)
# A worker may read a session a moment before the webhook of the caller's join is applied:
# a pending session stays admissible this long past its join window on the worker's side.
JOIN_GRACE = timedelta(seconds=5)


# What a gate reader fetches: the `ProjectionExpression` (and its names) of a GetItem.
GATE_PROJECTION = "#s, join_by"
GATE_NAMES = {"#s": "status"}
# What the worker reads of an inbound call's session: the agent version the webhook chose.
SESSION_VERSION_PROJECTION = "agent_version"


def shard_of(item_id: str) -> int:
    """The stable shard of a session or worker id: the same id always lands on the same key."""
    return int(hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:8], 16) % KEY_SHARDS


def sharded(prefix: str, item_id: str) -> str:
    """The partition-key value `prefix` takes for `item_id`, e.g. `STATE#active#07`."""
    return f"{prefix}#{shard_of(item_id):02d}"


def every_shard(prefix: str) -> list[str]:
    """Every value `prefix` is written under: each shard, then the unsharded key older items hold."""
    return [f"{prefix}#{n:02d}" for n in range(KEY_SHARDS)] + [prefix]


def fleet_pk(worker_id: str) -> str:
    return sharded(FLEET_PK, worker_id)


def session_key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": SESSION_SK}}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


class SessionGate(BaseModel):
    """What decides whether a session's room may have an agent: its status and join window."""

    model_config = ConfigDict(frozen=True)

    status: str
    join_by: datetime | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SessionGate:
        join_by = item.get("join_by", {}).get("S")
        return cls(
            status=item["status"]["S"], join_by=datetime.fromisoformat(join_by) if join_by else None
        )

    def admits_agent(self, now: datetime, grace: timedelta = timedelta(0)) -> bool:
        """Active, or pending inside its join window (plus `grace`); nothing else gets an agent."""
        if self.status == "active":
            return True
        if self.status != "pending":
            return False
        return self.join_by is None or now <= self.join_by + grace


class HeartbeatRoom(BaseModel):
    """A room one of the worker's agents is in, and that agent's identity there."""

    model_config = ConfigDict(frozen=True)

    room: str
    identity: str


class Heartbeat(BaseModel):
    """One worker's report of its capacity; it counts until `valid_until`.

    It also names the rooms the worker's agents are in, so that when its heartbeats stop a peer
    can take those calls over; `taken_over_by` is the peer that claimed them (once)."""

    model_config = ConfigDict(frozen=True)

    worker_id: str
    agent_name: str
    free_slots: int
    total_slots: int
    at: datetime
    valid_until: datetime
    rooms: tuple[HeartbeatRoom, ...] = ()
    taken_over_by: str | None = None

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": {"S": fleet_pk(self.worker_id)},
            "sk": {"S": f"WORKER#{self.worker_id}"},
            "type": {"S": "heartbeat"},
            "worker_id": {"S": self.worker_id},
            "agent_name": {"S": self.agent_name},
            "free_slots": {"N": str(self.free_slots)},
            "total_slots": {"N": str(self.total_slots)},
            "at": {"S": _iso(self.at)},
            "valid_until": {"S": _iso(self.valid_until)},
            "ttl": {"N": str(int((self.valid_until + HEARTBEAT_RETENTION).timestamp()))},
            "rooms": {
                "L": [
                    {"M": {"room": {"S": r.room}, "identity": {"S": r.identity}}}
                    for r in self.rooms
                ]
            },
        } | ({"taken_over_by": {"S": self.taken_over_by}} if self.taken_over_by else {})

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Heartbeat:
        return cls(
            worker_id=item["worker_id"]["S"],
            agent_name=item["agent_name"]["S"],
            free_slots=int(item["free_slots"]["N"]),
            total_slots=int(item["total_slots"]["N"]),
            at=datetime.fromisoformat(item["at"]["S"]),
            valid_until=datetime.fromisoformat(item["valid_until"]["S"]),
            rooms=tuple(
                HeartbeatRoom(room=r["M"]["room"]["S"], identity=r["M"]["identity"]["S"])
                for r in item.get("rooms", {}).get("L", [])
            ),
            taken_over_by=item.get("taken_over_by", {}).get("S"),
        )

    @property
    def at_text(self) -> str:
        """`at` exactly as stored: a claim's condition compares it."""
        return _iso(self.at)
