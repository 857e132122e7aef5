"""Sessions, live-session counters and usage counters; every state change is a conditional write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from functions.domain.models import (
    LIVE_STATUSES,
    Backlog,
    CounterRef,
    IdempotencyClaim,
    LimitKind,
    SessionEnd,
    SessionRecord,
    SessionStatus,
)
from functions.store.dynamo.accounts import AccountStore
from functions.store.dynamo.guard import applied, dynamo_errors, per_shard, query_pages, transact
from functions.store.dynamo.idempotency import claim_key, claim_put, claim_record
from functions.store.dynamo.items import (
    BY_STATE_INDEX,
    BY_USER_INDEX,
    backlog_pks,
    by_state_query,
    cleanup_pk,
    decode_cursor,
    encode_cursor,
    expired_by_ttl,
    iso,
    limit_key,
    serialize,
    session_item,
    session_key,
    session_record,
    state_pk,
    state_pks,
    ttl_after,
    usage_key,
)
from functions.store.errors import Conflict, Contended, LimitExceeded

# Values for the condition `#s IN (:pending, :active)`: the session is still live.
_LIVE = {":pending": SessionStatus.PENDING.value, ":active": SessionStatus.ACTIVE.value}


class SessionStore:
    """Sessions, their live-session counters and usage counters in the one table from template.yaml."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._accounts = AccountStore(client, table_name)

    # -- create -------------------------------------------------------------------------------

    def create(
        self,
        rec: SessionRecord,
        max_live: int,
        claim: IdempotencyClaim | None = None,
        *,
        max_account: int | None = None,
    ) -> IdempotencyClaim | None:
        """Writes a new session and counts it against its limits, atomically.

        `max_live` bounds its own counter (the key's user, or the end user it names),
        `max_account` its account's (an account's own limit, stored on its counter, wins).
        With a `claim`, the same transaction takes its `Idempotency-Key`: when another create
        holds the key already, nothing is written and that create's claim is returned.
        Raises `LimitExceeded` naming the limit hit, and `Contended` when a racing create holds
        the items and its claim cannot be read yet.
        """
        counters = rec.counters
        if rec.account_id is not None and max_account is None:
            raise ValueError("a session with an account needs max_account")
        items: list[dict[str, Any]] = [
            {"Update": self._count_in(ref, rec.created_at, max_live, max_account)}
            for ref in counters
        ]
        put_session = {
            "TableName": self._table,
            "Item": session_item(rec),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        items.append({"Put": put_session})
        if claim is not None:
            items.append({"Put": claim_put(self._table, claim)})
        try:
            failed = transact(self._client, items)
        except Contended:
            held = self._held(claim)
            if held is None:
                raise
            return held
        if not failed:
            return None
        # The key is checked first: a retry that lost the race also finds the limit reached.
        held = self._held(claim)
        if held is not None:
            return held
        for ref, hit in zip(counters, failed, strict=False):
            if hit and ref.kind is LimitKind.ACCOUNT:
                limit = self._accounts.limit(ref.owner, max_account or 0)
                raise LimitExceeded(limit, ref.kind)
            if hit:
                raise LimitExceeded(max_live, ref.kind)
        raise Conflict(failed)

    def _count_in(
        self, ref: CounterRef, at: datetime, max_live: int, max_account: int | None
    ) -> dict[str, Any]:
        """One more live session on a counter, unless it is at its limit."""
        condition = "attribute_not_exists(live) OR live < :max"
        if ref.kind is LimitKind.ACCOUNT:
            max_live = max_account or 0
            # An account's own limit sits on its counter (set with its live count).
            condition = f"(attribute_not_exists(max_live) AND ({condition})) OR live < max_live"
        return {
            "TableName": self._table,
            "Key": limit_key(ref),
            "UpdateExpression": "SET live = if_not_exists(live, :zero) + :one, updated_at = :now",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": serialize(
                {":zero": 0, ":one": 1, ":max": max_live, ":now": iso(at)}
            ),
        }

    def _held(self, claim: IdempotencyClaim | None) -> IdempotencyClaim | None:
        """Whoever holds the key a failed create tried to take."""
        if claim is None:
            return None
        return self.get_claim(claim.user_id, claim.key_hash, claim.created_at)

    def get_claim(self, user_id: str, key_hash: str, now: datetime) -> IdempotencyClaim | None:
        """The user's live claim on an `Idempotency-Key` (by its hash), if there is one."""
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table, Key=claim_key(user_id, key_hash), ConsistentRead=True
            )
        item = resp.get("Item")
        return claim_record(item, now) if item else None

    def put_ended(self, rec: SessionRecord) -> bool:
        """Writes a session that ended before it began (a refused phone call); counts against no limit.

        False when it is already there (a replayed webhook).
        """
        item = session_item(rec)
        # Not in any backlog: nothing is left for the reaper to do.
        item.pop("gsi2pk", None)
        item.pop("gsi2sk", None)
        ended = {"end_reason": rec.end_reason, "duration_seconds": Decimal("0")}
        if rec.ended_at is not None:
            ended["ended_at"] = iso(rec.ended_at)
        item |= serialize(ended)
        return applied(
            lambda: self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        )

    # -- reads --------------------------------------------------------------------------------

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table, Key=session_key(session_id), ConsistentRead=True
            )
        item = resp.get("Item")
        if not item or expired_by_ttl(item, now):
            return None
        return session_record(item)

    def list_for_user(
        self, user_id: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[SessionRecord], str | None]:
        """One page of the user's sessions, newest first; `BadCursor` for a foreign cursor."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER_INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"USER#{user_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor, user_id)
        with dynamo_errors():
            resp = self._client.query(**kwargs)
        records = [
            session_record(item) for item in resp.get("Items", []) if not expired_by_ttl(item, now)
        ]
        last = resp.get("LastEvaluatedKey")
        return records, (encode_cursor(last) if last else None)

    def backlog(
        self, backlog: Backlog, before: datetime | None = None, limit: int = 100
    ) -> Iterator[SessionRecord]:
        """Up to `limit` sessions of a backlog, the most overdue first across its shards,
        optionally only those due `before` a time."""
        condition = "gsi2pk = :pk"
        values: dict[str, Any] = {}
        if before is not None:
            condition += " AND gsi2sk < :before"
            values[":before"] = {"S": iso(before)}

        def read(pk: str) -> list[dict[str, Any]]:
            with dynamo_errors():
                resp = self._client.query(
                    TableName=self._table,
                    IndexName=BY_STATE_INDEX,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values | {":pk": {"S": pk}},
                    Limit=limit,
                )
            return resp.get("Items", [])

        items = [item for shard in per_shard(read, backlog_pks(backlog)) for item in shard]
        items.sort(key=lambda item: item.get("gsi2sk", {}).get("S", ""))
        for item in items[:limit]:
            yield session_record(item)

    def count_live(self) -> int:
        def count(pk: str) -> int:
            pages = query_pages(self._client, **by_state_query(self._table, pk), Select="COUNT")
            return sum(page.get("Count", 0) for page in pages)

        return sum(per_shard(count, [pk for status in LIVE_STATUSES for pk in state_pks(status)]))

    # -- transitions --------------------------------------------------------------------------

    def mark_active(self, session_id: str, joined_at: datetime, expires_at: datetime) -> bool:
        """pending -> active. False when the session was not pending (replay or race), or the
        join came after its join window."""
        return self._conditional_update(
            session_id,
            "SET #s = :active, joined_at = :joined, expires_at = :exp, gsi2pk = :gpk, "
            "gsi2sk = :exp, #ttl = :ttl",
            "#s = :pending AND (attribute_not_exists(join_by) OR join_by >= :joined)",
            _LIVE
            | {
                ":joined": iso(joined_at),
                ":exp": iso(expires_at),
                ":gpk": state_pk(SessionStatus.ACTIVE, session_id),
                ":ttl": ttl_after(expires_at),
            },
        )

    def mark_agent_joined(self, session_id: str, at: datetime) -> bool:
        """Records the agent's first arrival (or return) while the session is live."""
        return self._conditional_update(
            session_id,
            "SET agent_joined_at = if_not_exists(agent_joined_at, :at) REMOVE agent_left_at",
            "#s IN (:pending, :active)",
            _LIVE | {":at": iso(at)},
        )

    def record_agent_left(self, session_id: str, at: datetime, max_redispatch: int) -> bool:
        """Counts one re-dispatch for a live session, unless the budget is spent."""
        return self._conditional_update(
            session_id,
            "SET agent_left_at = :at, redispatch_count = redispatch_count + :one",
            "#s IN (:pending, :active) AND redispatch_count < :max",
            _LIVE | {":at": iso(at), ":one": 1, ":max": max_redispatch},
        )

    def finish(self, rec: SessionRecord, end: SessionEnd) -> bool:
        """Live -> terminal, giving back its place in each of its limits and adding its call
        time to its account's usage, in one transaction; False if already done."""
        end_session = self._end_update(rec, end)
        counts_out = [
            {
                "TableName": self._table,
                "Key": limit_key(ref),
                "UpdateExpression": "SET live = live - :one",
                "ConditionExpression": "live > :zero",
                "ExpressionAttributeValues": serialize({":one": 1, ":zero": 0}),
            }
            for ref in rec.counters
        ]
        usage = self._usage_add(rec, end)
        while True:
            items = [{"Update": u} for u in (end_session, *counts_out, *usage)]
            failed = transact(self._client, items)
            if not failed:
                return True
            if failed[0]:
                return False
            # A counter already at zero: end the session anyway, never below zero.
            counts_out = [c for c, hit in zip(counts_out, failed[1:], strict=False) if not hit]

    def _usage_add(self, rec: SessionRecord, end: SessionEnd) -> list[dict[str, Any]]:
        """Its call time on its account's usage counter for the day it ended (joined calls)."""
        if rec.joined_at is None:
            return []
        day = end.at.astimezone(UTC).date().isoformat()
        seconds = max(0.0, (end.at - rec.joined_at).total_seconds())
        values: dict[str, Any] = {
            ":sec": Decimal(str(round(seconds, 3))),
            ":one": 1,
            ":day": day,
        }
        update = "ADD #sec :sec, calls :one SET #day = :day"
        if rec.agent_id is not None:
            update += ", agent_id = :agent, agent_version = :version"
            values |= {":agent": rec.agent_id, ":version": rec.agent_version or 0}
        account = rec.account_id or rec.user_id
        return [
            {
                "TableName": self._table,
                "Key": usage_key(account, day, rec.agent_id, rec.agent_version),
                "UpdateExpression": update,
                "ExpressionAttributeNames": {"#sec": "seconds", "#day": "day"},
                "ExpressionAttributeValues": serialize(values),
            }
        ]

    def _end_update(self, rec: SessionRecord, end: SessionEnd) -> dict[str, Any]:
        duration = max(0.0, (end.at - rec.joined_at).total_seconds()) if rec.joined_at else 0.0
        values: dict[str, Any] = _LIVE | {
            ":new": end.status.value,
            ":at": iso(end.at),
            ":reason": end.reason,
            ":duration": Decimal(str(round(duration, 3))),
            ":ttl": ttl_after(end.at),
        }
        update = (
            "SET #s = :new, ended_at = :at, end_reason = :reason, duration_seconds = :duration, "
            "#ttl = :ttl"
        )
        if end.room_delete_pending:
            update += ", room_delete_pending = :true, gsi2pk = :cleanup, gsi2sk = :at"
            values |= {":true": True, ":cleanup": cleanup_pk(rec.session_id)}
        else:
            update += " REMOVE gsi2pk, gsi2sk"
        return {
            "TableName": self._table,
            "Key": session_key(rec.session_id),
            "UpdateExpression": update,
            "ConditionExpression": "#s IN (:pending, :active)",
            "ExpressionAttributeNames": {"#s": "status", "#ttl": "ttl"},
            "ExpressionAttributeValues": serialize(values),
        }

    def clear_room_delete(self, session_id: str) -> bool:
        return self._conditional_update(
            session_id,
            "SET room_delete_pending = :false REMOVE gsi2pk, gsi2sk",
            "room_delete_pending = :true",
            {":false": False, ":true": True},
        )

    def mark_room_delete_pending(self, session_id: str, at: datetime) -> bool:
        return self._conditional_update(
            session_id,
            "SET room_delete_pending = :true, gsi2pk = :cleanup, gsi2sk = :at",
            "NOT #s IN (:pending, :active)",
            _LIVE | {":true": True, ":cleanup": cleanup_pk(session_id), ":at": iso(at)},
        )

    def _conditional_update(
        self, session_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        """One guarded update of an existing session; False when its condition does not hold."""
        names = {k: v for k, v in (("#s", "status"), ("#ttl", "ttl")) if k in update + condition}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": session_key(session_id),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(pk) AND ({condition})",
            "ExpressionAttributeValues": serialize(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        return applied(lambda: self._client.update_item(**kwargs))
