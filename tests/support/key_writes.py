"""Counts the writes each partition-key value of the sessions table receives, table and indexes.

A hook on the boto3 client the control plane uses reads each written item before and after the
write (through a second, unhooked client) and charges one write to the item's table key and one
to each index key it holds afterwards, plus one to an index key it left (DynamoDB deletes the
index entry there). That is how DynamoDB spends write capacity on a table with all-attribute
index projections, whatever the expression that made the change.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.support.lambda_events import invoke
from tests.support.livekit_events import event_body, post_event

BASE = "/voice/realtime"
# Index name -> its partition-key attribute, as template.yaml defines them.
INDEX_KEYS = {"by-user": "gsi1pk", "by-state": "gsi2pk"}
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
# Ids in key values, so that keys of one kind group together in a summary.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class KeyWrites:
    """Writes per key value, as `<table or index>|<partition-key value>`; `transactional`
    counts the table writes made in a transaction (DynamoDB charges those twice)."""

    counts: Counter[str] = field(default_factory=Counter)
    transactional: Counter[str] = field(default_factory=Counter)
    active: bool = True

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values())
        return {key: n / total for key, n in self.counts.items()}


def count_key_writes(events: Any, reader: Any, table: str) -> KeyWrites:
    """Counts the writes to `table` of every client built on `events` (a boto3 session's event
    system, or a client's `meta.events`); `reader` is a client without the hook."""
    writes = KeyWrites()

    def keys_of(op: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if op == "PutItem":
            return [_key(params["Item"])]
        if op in ("UpdateItem", "DeleteItem"):
            return [params["Key"]]
        if op == "TransactWriteItems":
            return [
                _key(body["Item"]) if kind == "Put" else body["Key"]
                for item in params["TransactItems"]
                for kind, body in item.items()
                if kind != "ConditionCheck" and body["TableName"] == table
            ]
        return [
            _key(req["PutRequest"]["Item"]) if "PutRequest" in req else req["DeleteRequest"]["Key"]
            for req in params["RequestItems"].get(table, [])
        ]

    def image(key: dict[str, Any]) -> dict[str, Any]:
        return reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})

    def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not writes.active or model.name not in _WRITES:
            return
        if params.get("TableName", table) != table:
            return
        keys = keys_of(model.name, params)
        context["key_writes"] = [(key, image(key)) for key in keys]
        context["key_writes_in_transaction"] = model.name == "TransactWriteItems"

    def after(http_response: Any, context: dict[str, Any], **_: Any) -> None:
        written = context.pop("key_writes", None)
        if written is None or http_response.status_code != 200:
            return
        for key, old in written:
            new = image(key)
            writes.counts[f"table|{key['pk']['S']}"] += 1
            if context.get("key_writes_in_transaction"):
                writes.transactional[f"table|{key['pk']['S']}"] += 1
            for index, attr in INDEX_KEYS.items():
                was, now = old.get(attr, {}).get("S"), new.get(attr, {}).get("S")
                if now is not None:
                    writes.counts[f"{index}|{now}"] += 1
                if was is not None and was != now:
                    writes.counts[f"{index}|{was}"] += 1

    events.register("before-parameter-build.dynamodb", before)
    events.register("after-call.dynamodb", after)
    return writes


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def session_lifecycle(headers: dict[str, str], user: str, body: dict[str, Any]) -> str:
    """One call from create to hang-up through the API and signed LiveKit webhooks."""
    headers = headers | {"content-type": "application/json"}
    created = invoke("POST", f"{BASE}/session", headers=headers, json=body)
    assert created.status == 201, created.body
    room = created.body["room_name"]
    for event in (
        event_body("participant_joined", room, f"caller-{user}"),
        event_body("participant_joined", room, "agent-1", agent=True),
        event_body("participant_left", room, f"caller-{user}"),
    ):
        assert post_event(event).status == 200
    return created.body["session_id"]


def key_kind(key: str) -> str:
    """A key value with its ids and shard numbers written as placeholders: `by-state|STATE#active#<n>`."""
    kind = _ID.sub("<id>", key)
    kind = re.sub(r"#\d{2}$", "#<shard>", kind)
    return re.sub(r"(USER|ACCOUNT|USAGE|ENDUSER)#[^#|]+", r"\1#<owner>", kind)
