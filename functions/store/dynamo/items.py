"""Item encoding for the one table: keys, index attributes, records to items and back, cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from functions.domain.models import (
    ApiKeyRecord,
    Backlog,
    CallOverrides,
    CounterRef,
    LimitKind,
    SessionRecord,
    SessionStatus,
    UsageRow,
)
from functions.store.errors import BadCursor
from voice.table import every_shard, session_key, sharded

__all__ = ["session_key"]  # defined in voice.table: the worker reads sessions by the same key

BY_USER_INDEX = "by-user"
BY_STATE_INDEX = "by-state"
CLEANUP_STATE = "CLEANUP"
API_KEYS_PK = "APIKEYS"
# Old items stay readable for this long after they can no longer change, then TTL collects them.
RETENTION = timedelta(days=30)

_ser = TypeSerializer()
_de = TypeDeserializer()


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def ttl_after(at: datetime) -> int:
    return int((at + RETENTION).timestamp())


LIMIT_SK = "LIMIT"
# A counter's partition-key prefix by kind; a user's is the one from before accounts.
_COUNTER_PREFIX = {
    LimitKind.USER: "USER#",
    LimitKind.END_USER: "ENDUSER#",
    LimitKind.ACCOUNT: "ACCOUNT#",
}


def counter_key(user_id: str) -> dict[str, Any]:
    return limit_key(CounterRef(kind=LimitKind.USER, owner=user_id))


def limit_key(ref: CounterRef) -> dict[str, Any]:
    return {"pk": {"S": _COUNTER_PREFIX[ref.kind] + ref.owner}, "sk": {"S": LIMIT_SK}}


def counter_ref(pk: str) -> CounterRef | None:
    """The counter a `LIMIT` item's key names; None for a key no counter has."""
    for kind, prefix in _COUNTER_PREFIX.items():
        if pk.startswith(prefix):
            return CounterRef(kind=kind, owner=pk.removeprefix(prefix))
    return None


def usage_pk(account_id: str) -> str:
    return f"USAGE#{account_id}"


def usage_key(account_id: str, day: str, agent_id: str | None, version: int | None) -> dict:
    """One account's call time on one day with one agent version (`-#0`: the config's agent)."""
    return {
        "pk": {"S": usage_pk(account_id)},
        "sk": {"S": f"{day}#{agent_id or '-'}#{version or 0}"},
    }


def usage_row(item: dict[str, Any]) -> UsageRow:
    data = deserialize(item)
    version = data.get("agent_version")
    return UsageRow(
        day=str(data["day"]),
        agent_id=data.get("agent_id"),
        agent_version=None if version is None else int(version),
        calls=int(data.get("calls", 0)),
        seconds=float(data.get("seconds", 0)),
    )


def api_key_key(key_hash: str) -> dict[str, Any]:
    return {"pk": {"S": f"APIKEY#{key_hash}"}, "sk": {"S": "APIKEY"}}


def state_pk(status: SessionStatus, session_id: str) -> str:
    """The session's by-state partition in a status: `STATE#<status>#<shard>`."""
    return sharded(f"STATE#{status.value}", session_id)


def cleanup_pk(session_id: str) -> str:
    """The session's by-state partition while its room is still to be deleted."""
    return sharded(CLEANUP_STATE, session_id)


def state_pks(status: SessionStatus) -> list[str]:
    """Every by-state partition of one status (each shard, and the pre-shard key)."""
    return every_shard(f"STATE#{status.value}")


def by_state_query(table: str, pk: str) -> dict[str, Any]:
    """Query arguments for every session under one by-state partition-key value."""
    return {
        "TableName": table,
        "IndexName": BY_STATE_INDEX,
        "KeyConditionExpression": "gsi2pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
    }


def backlog_pks(backlog: Backlog) -> list[str]:
    """The by-state partitions holding a backlog: live statuses by name, rooms still to delete."""
    if backlog is Backlog.ROOM_DELETE:
        return every_shard(CLEANUP_STATE)
    return state_pks(SessionStatus(backlog.value))


def serialize(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def session_item(rec: SessionRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": f"SESSION#{rec.session_id}",
        "sk": "SESSION",
        "type": "session",
        "session_id": rec.session_id,
        "user_id": rec.user_id,
        "room_name": rec.room_name,
        "agent_type": rec.agent_type,
        "initial_greeting": rec.initial_greeting,
        "metadata_json": json.dumps(rec.metadata, separators=(",", ":")),
        "status": rec.status.value,
        "created_at": iso(rec.created_at),
        "expires_at": iso(rec.expires_at),
        "token_expires_at": iso(rec.token_expires_at),
        "config_version": rec.config_version,
        "max_session_duration": rec.max_session_duration,
        "redispatch_count": rec.redispatch_count,
        "gsi1pk": f"USER#{rec.user_id}",
        "gsi1sk": f"{iso(rec.created_at)}#{rec.session_id}",
        "gsi2pk": state_pk(rec.status, rec.session_id),
        # A pending session is due (for the reaper) at the end of its join window.
        "gsi2sk": iso(rec.join_by or rec.token_expires_at),
        "ttl": ttl_after(rec.token_expires_at),
    }
    if rec.voice_profile is not None:
        values["voice_profile"] = rec.voice_profile
    if rec.join_by is not None:
        values["join_by"] = iso(rec.join_by)
    if rec.overrides != CallOverrides():
        values["overrides_json"] = rec.overrides.model_dump_json(exclude_defaults=True)
    if rec.phone is not None:
        values["phone_json"] = rec.phone.model_dump_json()
    for optional in ("agent_id", "agent_version", "end_user_id", "account_id"):
        if getattr(rec, optional) is not None:
            values[optional] = getattr(rec, optional)
    return serialize(values)


def session_record(item: dict[str, Any]) -> SessionRecord:
    data = deserialize(item)
    data["metadata"] = json.loads(data.pop("metadata_json", "{}"))
    data["overrides"] = json.loads(data.pop("overrides_json", "{}"))
    if "phone_json" in data:
        data["phone"] = json.loads(data.pop("phone_json"))
    if isinstance(data.get("duration_seconds"), Decimal):
        data["duration_seconds"] = float(data["duration_seconds"])
    for key in ("max_session_duration", "redispatch_count", "agent_version"):
        if isinstance(data.get(key), Decimal):
            data[key] = int(data[key])
    return SessionRecord.model_validate(data)


def api_key_item(rec: ApiKeyRecord) -> dict[str, Any]:
    return serialize(
        {
            "pk": f"APIKEY#{rec.key_hash}",
            "sk": "APIKEY",
            "type": "api_key",
            "key_id": rec.key_id,
            "key_hash": rec.key_hash,
            "user_id": rec.user_id,
            "created_at": iso(rec.created_at),
            "revoked": rec.revoked,
            "gsi1pk": API_KEYS_PK,
            "gsi1sk": f"{rec.key_id}",
        }
        | ({} if rec.account_id is None else {"account_id": rec.account_id})
    )


def api_key_record(item: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord.model_validate(deserialize(item))


def expired_by_ttl(item: dict[str, Any], now: datetime) -> bool:
    # DynamoDB deletes TTL-expired items lazily (up to days later), so reads filter them.
    ttl = item.get("ttl", {}).get("N")
    return ttl is not None and int(ttl) < int(now.timestamp())


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
    """The user's own page key back from a cursor; `BadCursor` for anything else."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(key, dict)
            and key.get("gsi1pk", {}).get("S") == f"USER#{user_id}"
            and set(key) == {"pk", "sk", "gsi1pk", "gsi1sk"}
            and all(isinstance(v, dict) and isinstance(v.get("S"), str) for v in key.values())
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise BadCursor("not a cursor this store issued for this user")
    return key
