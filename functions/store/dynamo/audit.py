"""What the invariant check reads from the table: every counter, every live session; counter fixes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from functions.domain.audit import UserCounter
from functions.domain.models import LIVE_STATUSES, SessionRecord
from functions.store.dynamo.guard import applied, dynamo_errors, query_pages
from functions.store.dynamo.items import (
    by_state_query,
    counter_key,
    deserialize,
    serialize,
    session_record,
)


class AuditStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def counters(self) -> list[UserCounter]:
        """Every user's counter (a consistent scan: counters carry no index attribute)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :limit",
            "ExpressionAttributeValues": {":limit": {"S": "LIMIT"}},
            "ConsistentRead": True,
        }
        out: list[UserCounter] = []
        while True:
            with dynamo_errors():
                resp = self._client.scan(**kwargs)
            out.extend(_counter(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def counter(self, user_id: str) -> UserCounter | None:
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table, Key=counter_key(user_id), ConsistentRead=True
            )
        return _counter(resp["Item"]) if "Item" in resp else None

    def live_sessions(self) -> Iterator[SessionRecord]:
        for status in LIVE_STATUSES:
            for page in query_pages(self._client, **by_state_query(self._table, status)):
                yield from (session_record(item) for item in page.get("Items", []))

    def set_counter(self, user_id: str, seen: int, live: int, now: datetime) -> bool:
        """Sets the counter to `live` only if it still holds `seen`: a racing create wins."""
        return applied(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=counter_key(user_id),
                UpdateExpression="SET live = :live, repaired_at = :now",
                ConditionExpression="live = :seen",
                ExpressionAttributeValues=serialize(
                    {":live": live, ":seen": seen, ":now": now.isoformat()}
                ),
            )
        )


def _counter(item: dict[str, Any]) -> UserCounter:
    data = deserialize(item)
    return UserCounter(
        user_id=str(data["pk"]).removeprefix("USER#"),
        live=int(data.get("live", 0)),
        updated_at=data.get("updated_at"),
    )
