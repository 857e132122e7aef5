"""Customer-webhook delivery attempts, kept beside their session for the call console."""

from __future__ import annotations

from typing import Any

from functions.domain.models import WebhookDelivery
from functions.store.dynamo.guard import dynamo_errors, query_pages
from functions.store.dynamo.items import iso, ttl_after

_SK = "DELIVERY#"
# One attempt's `detail` is what the receiver said: short, but bounded all the same.
_MAX_DETAIL = 500


def _pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


class DeliveryStore:
    """Items `pk = SESSION#<id>`, `sk = DELIVERY#<at>#<event id>#<attempt>`, collected by TTL."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, session_id: str, delivery: WebhookDelivery) -> None:
        item: dict[str, Any] = {
            "pk": {"S": _pk(session_id)},
            "sk": {"S": f"{_SK}{iso(delivery.at)}#{delivery.event_id}#{delivery.attempt}"},
            "type": {"S": "webhook_delivery"},
            "event_id": {"S": delivery.event_id},
            "event_type": {"S": delivery.type},
            "attempt": {"N": str(delivery.attempt)},
            "outcome": {"S": delivery.outcome},
            "at": {"S": iso(delivery.at)},
            "ttl": {"N": str(ttl_after(delivery.at))},
        }
        if delivery.detail:
            item["detail"] = {"S": delivery.detail[:_MAX_DETAIL]}
        with dynamo_errors():
            self._client.put_item(TableName=self._table, Item=item)

    def list(self, session_id: str) -> list[WebhookDelivery]:
        """Every attempt for the session, oldest first."""
        return [
            WebhookDelivery(
                event_id=item["event_id"]["S"],
                type=item["event_type"]["S"],
                attempt=int(item["attempt"]["N"]),
                outcome=item["outcome"]["S"],
                at=item["at"]["S"],
                detail=item.get("detail", {}).get("S"),
            )
            for page in query_pages(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                ExpressionAttributeValues={":pk": {"S": _pk(session_id)}, ":sk": {"S": _SK}},
            )
            for item in page.get("Items", [])
        ]
