"""What the invariant check reads from the table: every counter, every live session; counter fixes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from functions.domain.audit import LimitCounter
from functions.domain.models import LIVE_STATUSES, CounterRef, SessionRecord
from functions.store.dynamo.guard import applied, dynamo_errors, query_pages
from functions.store.dynamo.items import (
    LIMIT_SK,
    by_state_query,
    counter_ref,
    deserialize,
    limit_key,
    serialize,
    session_record,
    state_pks,
)


class AuditStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def counters(self) -> list[LimitCounter]:
        """Every counter: users', end users', accounts' (a consistent scan: counters carry no
        index attribute)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :limit",
            "ExpressionAttributeValues": {":limit": {"S": LIMIT_SK}},
            "ConsistentRead": True,
        }
        out: list[LimitCounter] = []
        while True:
            with dynamo_errors():
                resp = self._client.scan(**kwargs)
            out.extend(c for item in resp.get("Items", []) if (c := _counter(item)) is not None)
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def counter(self, ref: CounterRef) -> LimitCounter | None:
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table, Key=limit_key(ref), ConsistentRead=True
            )
        return _counter(resp["Item"]) if "Item" in resp else None

    def live_sessions(self) -> Iterator[SessionRecord]:
        for status in LIVE_STATUSES:
            for pk in state_pks(status):
                for page in query_pages(self._client, **by_state_query(self._table, pk)):
                    yield from (session_record(item) for item in page.get("Items", []))

    def set_counter(self, ref: CounterRef, seen: int, live: int, now: datetime) -> bool:
        """Sets the counter to `live` only if it still holds `seen`: a racing create wins."""
        return applied(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=limit_key(ref),
                UpdateExpression="SET live = :live, repaired_at = :now",
                ConditionExpression="live = :seen",
                ExpressionAttributeValues=serialize(
                    {":live": live, ":seen": seen, ":now": now.isoformat()}
                ),
            )
        )


def _counter(item: dict[str, Any]) -> LimitCounter | None:
    data = deserialize(item)
    ref = counter_ref(str(data["pk"]))
    if ref is None:
        return None
    return LimitCounter(ref=ref, live=int(data.get("live", 0)), updated_at=data.get("updated_at"))
