"""The fleet's capacity as the table holds it: worker heartbeats and sessions not yet joined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.domain.models import SessionStatus
from functions.store.dynamo.guard import per_shard, query_pages
from functions.store.dynamo.items import BY_STATE_INDEX, iso, state_pks
from voice.table import FLEET_PK, Heartbeat, every_shard


class FleetStore:
    """Reads the heartbeats workers write (every FLEET shard) and counts unjoined sessions."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def heartbeats(self, now: datetime) -> list[Heartbeat]:
        """Every heartbeat still valid at `now` (TTL deletes lapsed ones only days later)."""

        def read(pk: str) -> list[Heartbeat]:
            pages = query_pages(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            )
            return [Heartbeat.from_item(item) for page in pages for item in page.get("Items", [])]

        beats = [b for shard in per_shard(read, every_shard(FLEET_PK)) for b in shard]
        return [b for b in beats if b.valid_until > now]

    def count_unjoined(self, now: datetime) -> int:
        """Pending sessions still inside their join window: each will take a slot on joining."""

        def count(pk: str) -> int:
            pages = query_pages(
                self._client,
                TableName=self._table,
                IndexName=BY_STATE_INDEX,
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk > :now",
                ExpressionAttributeValues={":pk": {"S": pk}, ":now": {"S": iso(now)}},
                Select="COUNT",
            )
            return sum(page.get("Count", 0) for page in pages)

        return sum(per_shard(count, state_pks(SessionStatus.PENDING)))
