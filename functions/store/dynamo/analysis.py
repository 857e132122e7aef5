"""Post-call analyses, one item beside each analysed session."""

from __future__ import annotations

from typing import Any

from functions.domain.analysis import SessionAnalysis
from functions.store.dynamo.guard import dynamo_errors
from functions.store.dynamo.items import iso, ttl_after

_SK = "ANALYSIS"


def _key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": _SK}}


class AnalysisStore:
    """Items `pk = SESSION#<id>`, `sk = ANALYSIS`: the result as JSON, collected by TTL."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, session_id: str, analysis: SessionAnalysis) -> None:
        item = _key(session_id) | {
            "type": {"S": "analysis"},
            "result": {"S": analysis.model_dump_json()},
            "at": {"S": iso(analysis.analyzed_at)},
            "ttl": {"N": str(ttl_after(analysis.analyzed_at))},
        }
        with dynamo_errors():
            self._client.put_item(TableName=self._table, Item=item)

    def get(self, session_id: str) -> SessionAnalysis | None:
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table,
                Key=_key(session_id),
                ProjectionExpression="#r",
                ExpressionAttributeNames={"#r": "result"},
            )
        item = resp.get("Item")
        return SessionAnalysis.model_validate_json(item["result"]["S"]) if item else None
