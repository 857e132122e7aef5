"""DynamoDB access for sessions, per-user counters and API keys; every state change is conditional."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from functions.sessions.errors import DependencyUnavailable, InvalidRequest, SessionLimitReached
from functions.sessions.models import (
    LIVE_STATUSES,
    ApiKeyRecord,
    SessionRecord,
    SessionStatus,
)

BY_USER_INDEX = "by-user"
BY_STATE_INDEX = "by-state"
CLEANUP_STATE = "CLEANUP"
# Old items stay readable for this long after they can no longer change, then TTL collects them.
RETENTION = timedelta(days=30)

_ser = TypeSerializer()
_de = TypeDeserializer()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _session_key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}}


def _counter_key(user_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "LIMIT"}}


def _state_pk(status: SessionStatus) -> str:
    return f"STATE#{status.value}"


def _serialize(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items()}


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _unavailable(exc: Exception) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"the session store is unavailable, try again shortly ({type(exc).__name__})"
    )


def _reasons(exc: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]


class SessionStore:
    """Sessions and per-user live-session counters in the one table from template.yaml."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- records ------------------------------------------------------------------------------

    def _to_item(self, rec: SessionRecord) -> dict[str, Any]:
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
            "created_at": _iso(rec.created_at),
            "expires_at": _iso(rec.expires_at),
            "token_expires_at": _iso(rec.token_expires_at),
            "config_version": rec.config_version,
            "max_session_duration": rec.max_session_duration,
            "redispatch_count": rec.redispatch_count,
            "gsi1pk": f"USER#{rec.user_id}",
            "gsi1sk": f"{_iso(rec.created_at)}#{rec.session_id}",
            "gsi2pk": _state_pk(rec.status),
            "gsi2sk": _iso(rec.token_expires_at),
            "ttl": int((rec.token_expires_at + RETENTION).timestamp()),
        }
        if rec.voice_profile is not None:
            values["voice_profile"] = rec.voice_profile
        return _serialize(values)

    @staticmethod
    def _from_item(item: dict[str, Any]) -> SessionRecord:
        data = _deserialize(item)
        data["metadata"] = json.loads(data.pop("metadata_json", "{}"))
        for key in ("duration_seconds",):
            if isinstance(data.get(key), Decimal):
                data[key] = float(data[key])
        for key in ("max_session_duration", "redispatch_count"):
            if isinstance(data.get(key), Decimal):
                data[key] = int(data[key])
        return SessionRecord.model_validate(data)

    # -- create -------------------------------------------------------------------------------

    def create(self, rec: SessionRecord, max_live: int) -> None:
        """Writes a new session and takes one of the user's slots, atomically, or raises."""
        now = _iso(rec.created_at)
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _counter_key(rec.user_id),
                            "UpdateExpression": (
                                "SET live = if_not_exists(live, :zero) + :one, updated_at = :now"
                            ),
                            "ConditionExpression": "attribute_not_exists(live) OR live < :max",
                            "ExpressionAttributeValues": _serialize(
                                {":zero": 0, ":one": 1, ":max": max_live, ":now": now}
                            ),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._to_item(rec),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = _reasons(exc)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise SessionLimitReached(
                        f"you already have {max_live} live sessions, the limit "
                        f"(max_sessions_per_user = {max_live}); end one with "
                        "DELETE /voice/realtime/session/{id} and try again"
                    ) from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    # -- reads --------------------------------------------------------------------------------

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        try:
            resp = self._client.get_item(
                TableName=self._table, Key=_session_key(session_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = resp.get("Item")
        if not item or _expired_by_ttl(item, now):
            return None
        return self._from_item(item)

    def list_for_user(
        self, user_id: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[SessionRecord], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"USER#{user_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, user_id)
        try:
            resp = self._client.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        records = [
            self._from_item(item)
            for item in resp.get("Items", [])
            if not _expired_by_ttl(item, now)
        ]
        last = resp.get("LastEvaluatedKey")
        return records, (_encode_cursor(last) if last else None)

    def by_state(
        self, state: str, before: datetime | None = None, limit: int = 100
    ) -> Iterator[SessionRecord]:
        """Sessions in a live state (or awaiting room clean-up), optionally due `before` a time."""
        condition = "gsi2pk = :pk"
        values: dict[str, Any] = {":pk": {"S": state}}
        if before is not None:
            condition += " AND gsi2sk < :before"
            values[":before"] = {"S": _iso(before)}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_STATE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Limit": limit,
        }
        try:
            resp = self._client.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        for item in resp.get("Items", []):
            yield self._from_item(item)

    def count_live(self) -> int:
        total = 0
        for status in LIVE_STATUSES:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": BY_STATE_INDEX,
                "KeyConditionExpression": "gsi2pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": _state_pk(status)}},
                "Select": "COUNT",
            }
            try:
                while True:
                    resp = self._client.query(**kwargs)
                    total += resp.get("Count", 0)
                    if "LastEvaluatedKey" not in resp:
                        break
                    kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc) from exc
        return total

    def live_count_for_user(self, user_id: str) -> int:
        try:
            resp = self._client.get_item(
                TableName=self._table, Key=_counter_key(user_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = resp.get("Item")
        return int(_de.deserialize(item["live"])) if item and "live" in item else 0

    # -- transitions --------------------------------------------------------------------------

    def mark_active(self, session_id: str, joined_at: datetime, expires_at: datetime) -> bool:
        """pending -> active. False when the session was not pending (replay or race)."""
        return self._conditional_update(
            session_id,
            "SET #s = :active, joined_at = :joined, expires_at = :exp, gsi2pk = :gpk, "
            "gsi2sk = :exp, #ttl = :ttl",
            "#s = :pending",
            {
                ":active": SessionStatus.ACTIVE.value,
                ":pending": SessionStatus.PENDING.value,
                ":joined": _iso(joined_at),
                ":exp": _iso(expires_at),
                ":gpk": _state_pk(SessionStatus.ACTIVE),
                ":ttl": int((expires_at + RETENTION).timestamp()),
            },
        )

    def mark_agent_joined(self, session_id: str, at: datetime) -> bool:
        """Records the agent's first arrival (or return) while the session is live."""
        return self._conditional_update(
            session_id,
            "SET agent_joined_at = if_not_exists(agent_joined_at, :at) REMOVE agent_left_at",
            "#s IN (:pending, :active)",
            {
                ":at": _iso(at),
                ":pending": SessionStatus.PENDING.value,
                ":active": SessionStatus.ACTIVE.value,
            },
            names={"#s": "status"},
        )

    def record_agent_left(self, session_id: str, at: datetime, max_redispatch: int) -> bool:
        """Counts one re-dispatch for a live session, unless the budget is spent."""
        return self._conditional_update(
            session_id,
            "SET agent_left_at = :at, redispatch_count = redispatch_count + :one",
            "#s IN (:pending, :active) AND redispatch_count < :max",
            {
                ":at": _iso(at),
                ":one": 1,
                ":max": max_redispatch,
                ":pending": SessionStatus.PENDING.value,
                ":active": SessionStatus.ACTIVE.value,
            },
            names={"#s": "status"},
        )

    def finish(
        self,
        rec: SessionRecord,
        status: SessionStatus,
        at: datetime,
        reason: str,
        room_delete_pending: bool,
    ) -> bool:
        """Live -> terminal and frees the user's slot in one transaction; False if already done."""
        started = rec.joined_at or rec.created_at
        duration = max(0.0, (at - started).total_seconds()) if rec.joined_at else 0.0
        values: dict[str, Any] = {
            ":new": status.value,
            ":at": _iso(at),
            ":reason": reason,
            ":duration": Decimal(str(round(duration, 3))),
            ":pending": SessionStatus.PENDING.value,
            ":active": SessionStatus.ACTIVE.value,
            ":ttl": int((at + RETENTION).timestamp()),
        }
        update = (
            "SET #s = :new, ended_at = :at, end_reason = :reason, duration_seconds = :duration, "
            "#ttl = :ttl"
        )
        if room_delete_pending:
            update += ", room_delete_pending = :true, gsi2pk = :cleanup, gsi2sk = :at"
            values[":true"] = True
            values[":cleanup"] = CLEANUP_STATE
        else:
            update += " REMOVE gsi2pk, gsi2sk"
        session_update = {
            "TableName": self._table,
            "Key": _session_key(rec.session_id),
            "UpdateExpression": update,
            "ConditionExpression": "#s IN (:pending, :active)",
            "ExpressionAttributeNames": {"#s": "status", "#ttl": "ttl"},
            "ExpressionAttributeValues": _serialize(values),
        }
        counter_update = {
            "TableName": self._table,
            "Key": _counter_key(rec.user_id),
            "UpdateExpression": "SET live = live - :one",
            "ConditionExpression": "live > :zero",
            "ExpressionAttributeValues": _serialize({":one": 1, ":zero": 0}),
        }
        try:
            self._client.transact_write_items(
                TransactItems=[{"Update": session_update}, {"Update": counter_update}]
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise _unavailable(exc) from exc
            reasons = _reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                # The counter is already at zero: end the session anyway, never below zero.
                try:
                    self._client.update_item(**session_update)
                    return True
                except ClientError as inner:
                    if inner.response["Error"]["Code"] == "ConditionalCheckFailedException":
                        return False
                    raise _unavailable(inner) from inner
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def clear_room_delete(self, session_id: str) -> bool:
        return self._conditional_update(
            session_id,
            "SET room_delete_pending = :false REMOVE gsi2pk, gsi2sk",
            "room_delete_pending = :true",
            {":false": False, ":true": True},
            names={},
        )

    def mark_room_delete_pending(self, session_id: str, at: datetime) -> bool:
        return self._conditional_update(
            session_id,
            "SET room_delete_pending = :true, gsi2pk = :cleanup, gsi2sk = :at",
            "NOT #s IN (:pending, :active)",
            {
                ":true": True,
                ":cleanup": CLEANUP_STATE,
                ":at": _iso(at),
                ":pending": SessionStatus.PENDING.value,
                ":active": SessionStatus.ACTIVE.value,
            },
            names={"#s": "status"},
        )

    def _conditional_update(
        self,
        session_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        expr_names = {"#s": "status", "#ttl": "ttl"} if names is None else names
        used = {k: v for k, v in expr_names.items() if k in update or k in condition}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": _session_key(session_id),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(pk) AND ({condition})",
            "ExpressionAttributeValues": _serialize(values),
        }
        if used:
            kwargs["ExpressionAttributeNames"] = used
        try:
            self._client.update_item(**kwargs)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc


class ApiKeyStore:
    """API keys, stored only as SHA-256 hashes."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, rec: ApiKeyRecord) -> None:
        item = _serialize(
            {
                "pk": f"APIKEY#{rec.key_hash}",
                "sk": "APIKEY",
                "type": "api_key",
                "key_id": rec.key_id,
                "key_hash": rec.key_hash,
                "user_id": rec.user_id,
                "created_at": _iso(rec.created_at),
                "revoked": rec.revoked,
                "gsi1pk": "APIKEYS",
                "gsi1sk": f"{rec.key_id}",
            }
        )
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    def get_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        try:
            resp = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"APIKEY#{key_hash}"}, "sk": {"S": "APIKEY"}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = resp.get("Item")
        return _key_record(item) if item else None

    def list(self) -> list[ApiKeyRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "APIKEYS"}},
        }
        out: list[ApiKeyRecord] = []
        try:
            while True:
                resp = self._client.query(**kwargs)
                out.extend(_key_record(i) for i in resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    return out
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    def revoke(self, key_hash: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"APIKEY#{key_hash}"}, "sk": {"S": "APIKEY"}},
                UpdateExpression="SET revoked = :true",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _unavailable(exc) from exc


def _key_record(item: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord.model_validate(_deserialize(item))


def _expired_by_ttl(item: dict[str, Any], now: datetime) -> bool:
    # DynamoDB deletes TTL-expired items lazily (up to days later), so reads filter them.
    ttl = item.get("ttl", {}).get("N")
    return ttl is not None and int(ttl) < int(now.timestamp())


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
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
        raise InvalidRequest("cursor: not a cursor from a previous GET /sessions response")
    return key
