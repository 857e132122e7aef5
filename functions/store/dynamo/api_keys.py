"""API keys in the table, stored only as SHA-256 hashes."""

from __future__ import annotations

from typing import Any

from functions.domain.models import ApiKeyRecord
from functions.store.dynamo.guard import applied, dynamo_errors, query_pages
from functions.store.dynamo.items import (
    API_KEYS_PK,
    BY_USER_INDEX,
    api_key_item,
    api_key_key,
    api_key_record,
)


class ApiKeyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, rec: ApiKeyRecord) -> None:
        with dynamo_errors():
            self._client.put_item(TableName=self._table, Item=api_key_item(rec))

    def get_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with dynamo_errors():
            resp = self._client.get_item(TableName=self._table, Key=api_key_key(key_hash))
        item = resp.get("Item")
        return api_key_record(item) if item else None

    def list(self) -> list[ApiKeyRecord]:
        pages = query_pages(
            self._client,
            TableName=self._table,
            IndexName=BY_USER_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": API_KEYS_PK}},
        )
        return [api_key_record(item) for page in pages for item in page.get("Items", [])]

    def revoke(self, key_hash: str) -> bool:
        """False when there is no such key."""
        return applied(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=api_key_key(key_hash),
                UpdateExpression="SET revoked = :true",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        )
