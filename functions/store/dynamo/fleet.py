"""The fleet's capacity as the table holds it: worker heartbeats and sessions not yet joined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.domain.models import SessionStatus
from functions.store.dynamo.guard import query_pages
from functions.store.dynamo.items import BY_STATE_INDEX, iso, state_pk
from voice.table import FLEET_PK, Heartbeat


class FleetStore:
    """Reads the heartbeats workers write (one partition) and counts unjoined sessions."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def heartbeats(self, now: datetime) -> list[Heartbeat]:
        """Every heartbeat still valid at `now` (TTL deletes lapsed ones only days later)."""
        beats = [
            Heartbeat.from_item(item)
            for page in query_pages(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": FLEET_PK}},
                ConsistentRead=True,
            )
            for item in page.get("Items", [])
        ]
        return [b for b in beats if b.valid_until > now]

    def count_unjoined(self, now: datetime) -> int:
        """Pending sessions still inside their join window: each will take a slot on joining."""
        return sum(
            page.get("Count", 0)
            for page in query_pages(
                self._client,
                TableName=self._table,
                IndexName=BY_STATE_INDEX,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk > :now",
                ExpressionAttributeValues={
                    ":pk": {"S": state_pk(SessionStatus.PENDING)},
                    ":now": {"S": iso(now)},
                },
                Select="COUNT",
            )
        )
