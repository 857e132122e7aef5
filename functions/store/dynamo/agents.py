"""Agents, their versions and traffic in the one table: one partition per agent.

`AGENT#{id}` holds `AGENT` (name, owner, the latest version number), `VERSION#{n}` (immutable),
`TRAFFIC` (the allocation in force) and `TRAFFIC#{revision}` (every allocation, for history).
Version numbers and traffic revisions advance only by conditional writes in one transaction.
"""

from __future__ import annotations

import json
from typing import Any

from functions.domain.agents import AgentRecord, AgentVersionRecord, Allocation, EvalResult
from functions.store.dynamo.guard import dynamo_errors, query_pages, transact
from functions.store.dynamo.items import (
    BY_STATE_INDEX,
    BY_USER_INDEX,
    deserialize,
    iso,
    serialize,
)
from voice.agents import VERSION_SK_PREFIX, AgentSpec, agent_pk, version_key, version_sk

AGENT_SK = "AGENT"
TRAFFIC_SK = "TRAFFIC"
TRAFFIC_HISTORY_PREFIX = "TRAFFIC#"
CANARY_STATE = "CANARY"
# A version's latest evaluation, beside it (the version item itself never changes).
EVAL_PREFIX = "EVAL#"


def owner_pk(owner: str) -> str:
    return f"AGENTS#{owner}"


def _key(agent_id: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": agent_pk(agent_id)}, "sk": {"S": sk}}


def _history_sk(revision: int) -> str:
    return f"{TRAFFIC_HISTORY_PREFIX}{revision:08d}"


def _agent_item(rec: AgentRecord) -> dict[str, Any]:
    return serialize(
        {
            "pk": agent_pk(rec.agent_id),
            "sk": AGENT_SK,
            "type": "agent",
            "agent_id": rec.agent_id,
            "owner": rec.owner,
            "name": rec.name,
            "created_at": iso(rec.created_at),
            "created_by": rec.created_by,
            "latest_version": rec.latest_version,
            "gsi1pk": owner_pk(rec.owner),
            "gsi1sk": f"{iso(rec.created_at)}#{rec.agent_id}",
        }
    )


def _agent_record(item: dict[str, Any]) -> AgentRecord:
    data = deserialize(item)
    data["latest_version"] = int(data["latest_version"])
    return AgentRecord.model_validate(data)


def _version_item(rec: AgentVersionRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": agent_pk(rec.agent_id),
        "sk": version_sk(rec.version),
        "type": "agent_version",
        "agent_id": rec.agent_id,
        "version": rec.version,
        "spec_json": rec.spec.model_dump_json(),
        "created_at": iso(rec.created_at),
        "created_by": rec.created_by,
    }
    if rec.note is not None:
        values["note"] = rec.note
    return serialize(values)


def _version_record(item: dict[str, Any]) -> AgentVersionRecord:
    data = deserialize(item)
    data["version"] = int(data["version"])
    data["spec"] = AgentSpec.model_validate_json(data.pop("spec_json"))
    return AgentVersionRecord.model_validate(data)


def _eval_sk(version: int) -> str:
    return f"{EVAL_PREFIX}{version:08d}"


def _eval_item(result: EvalResult) -> dict[str, Any]:
    return serialize(
        {
            "pk": agent_pk(result.agent_id),
            "sk": _eval_sk(result.version),
            "type": "agent_eval",
            "agent_id": result.agent_id,
            "version": result.version,
            "result_json": result.model_dump_json(),
        }
    )


def _eval_result(item: dict[str, Any]) -> EvalResult:
    return EvalResult.model_validate_json(deserialize(item)["result_json"])


def _allocation_item(alloc: Allocation, sk: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pk": agent_pk(alloc.agent_id),
        "sk": sk,
        "type": "agent_traffic",
        "agent_id": alloc.agent_id,
        "revision": alloc.revision,
        "entries_json": json.dumps([e.model_dump() for e in alloc.entries]),
        "action": alloc.action,
        "at": iso(alloc.at),
        "actor": alloc.actor,
    }
    if alloc.reason is not None:
        values["reason"] = alloc.reason
    if alloc.previous_revision is not None:
        values["previous_revision"] = alloc.previous_revision
    if sk == TRAFFIC_SK and len(alloc.entries) > 1:
        # Sparse: only splits in force are in the by-state index, for the monitor to judge.
        values["gsi2pk"] = CANARY_STATE
        values["gsi2sk"] = alloc.agent_id
    return serialize(values)


def _allocation(item: dict[str, Any]) -> Allocation:
    data = deserialize(item)
    data["entries"] = json.loads(data.pop("entries_json"))
    data["revision"] = int(data["revision"])
    if data.get("previous_revision") is not None:
        data["previous_revision"] = int(data["previous_revision"])
    return Allocation.model_validate(data)


class AgentStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- agents -------------------------------------------------------------------------------

    def create_agent(self, rec: AgentRecord) -> bool:
        """False when the id is taken."""
        put = {
            "TableName": self._table,
            "Item": _agent_item(rec),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return not transact(self._client, [{"Put": put}])

    def get_agent(self, agent_id: str) -> AgentRecord | None:
        return self._get(_key(agent_id, AGENT_SK), _agent_record)

    def list_agents(self, owner: str) -> list[AgentRecord]:
        pages = query_pages(
            self._client,
            TableName=self._table,
            IndexName=BY_USER_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}},
        )
        return [_agent_record(item) for page in pages for item in page.get("Items", [])]

    # -- versions -----------------------------------------------------------------------------

    def publish(self, rec: AgentVersionRecord, first_allocation: Allocation | None = None) -> bool:
        """Writes version `rec.version` if the agent's latest is still the one before it.

        With `first_allocation`, the same transaction starts the agent's traffic (its first
        version). False when another publish took the number first.
        """
        bump = {
            "TableName": self._table,
            "Key": _key(rec.agent_id, AGENT_SK),
            "UpdateExpression": "SET latest_version = :n",
            "ConditionExpression": "latest_version = :prev",
            "ExpressionAttributeValues": serialize({":n": rec.version, ":prev": rec.version - 1}),
        }
        put = {
            "TableName": self._table,
            "Item": _version_item(rec),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        items: list[dict[str, Any]] = [{"Update": bump}, {"Put": put}]
        if first_allocation is not None:
            items += self._allocation_puts(first_allocation, None)
        return not transact(self._client, items)

    def get_version(self, agent_id: str, version: int) -> AgentVersionRecord | None:
        return self._get(version_key(agent_id, version), _version_record)

    def list_versions(self, agent_id: str) -> list[AgentVersionRecord]:
        return [_version_record(i) for i in self._partition(agent_id, VERSION_SK_PREFIX)]

    # -- traffic ------------------------------------------------------------------------------

    def traffic(self, agent_id: str) -> Allocation | None:
        return self._get(_key(agent_id, TRAFFIC_SK), _allocation)

    def allocation(self, agent_id: str, revision: int) -> Allocation | None:
        return self._get(_key(agent_id, _history_sk(revision)), _allocation)

    def history(self, agent_id: str) -> list[Allocation]:
        return [_allocation(i) for i in self._partition(agent_id, TRAFFIC_HISTORY_PREFIX)]

    def canaries(self) -> list[Allocation]:
        """Every allocation in force that splits traffic between versions."""
        pages = query_pages(
            self._client,
            TableName=self._table,
            IndexName=BY_STATE_INDEX,
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues={":pk": {"S": CANARY_STATE}},
        )
        return [_allocation(item) for page in pages for item in page.get("Items", [])]

    def set_traffic(self, alloc: Allocation, expected_revision: int) -> bool:
        """Puts `alloc` in force if the one in force is still `expected_revision`; False if not."""
        return not transact(self._client, self._allocation_puts(alloc, expected_revision))

    def _allocation_puts(self, alloc: Allocation, expected: int | None) -> list[dict[str, Any]]:
        current: dict[str, Any] = {
            "TableName": self._table,
            "Item": _allocation_item(alloc, TRAFFIC_SK),
        }
        if expected is None:
            current["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            current["ConditionExpression"] = "revision = :expected"
            current["ExpressionAttributeValues"] = serialize({":expected": expected})
        history = {
            "TableName": self._table,
            "Item": _allocation_item(alloc, _history_sk(alloc.revision)),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return [{"Put": current}, {"Put": history}]

    # -- evaluations --------------------------------------------------------------------------

    def put_eval(self, result: EvalResult) -> None:
        """The version's latest evaluation: a newer run replaces the one before."""
        with dynamo_errors():
            self._client.put_item(TableName=self._table, Item=_eval_item(result))

    def latest_eval(self, agent_id: str, version: int) -> EvalResult | None:
        return self._get(_key(agent_id, _eval_sk(version)), _eval_result)

    # -- reads --------------------------------------------------------------------------------

    def _get(self, key: dict[str, Any], parse: Any) -> Any:
        with dynamo_errors():
            resp = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item = resp.get("Item")
        return parse(item) if item else None

    def _partition(self, agent_id: str, prefix: str) -> list[dict[str, Any]]:
        pages = query_pages(
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": agent_pk(agent_id)},
                ":prefix": {"S": prefix},
            },
        )
        return [item for page in pages for item in page.get("Items", [])]
