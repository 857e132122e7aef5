"""The webhook function may put delivery records and nothing else: the attributes the store writes
are exactly the ones its policy allows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.domain.models import WebhookDelivery
from functions.store.dynamo.deliveries import DeliveryStore
from infra.template import load_template


class _Capture:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> None:
        self.items.append(kwargs["Item"])


def _statement(sid: str) -> dict[str, Any]:
    props = load_template()["Resources"]["WebhookFunction"]["Properties"]
    for policy in props["Policies"]:
        for statement in policy.get("Statement", []):
            if statement.get("Sid") == sid:
                return statement
    raise AssertionError(f"WebhookFunction has no statement {sid}")


def test_a_failed_attempt_writes_only_attributes_the_policy_allows():
    client = _Capture()
    at = datetime(2026, 12, 4, tzinfo=UTC)
    DeliveryStore(client, "t").record(
        "s1",
        WebhookDelivery(
            event_id="e", type="session.started", attempt=1, outcome="retrying", at=at, detail="503"
        ),
    )
    statement = _statement("DeliveryRecords")
    allowed = set(statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    (item,) = client.items
    assert set(item) == allowed
    assert item["pk"]["S"].startswith("SESSION#")
    assert statement["Action"] == "dynamodb:PutItem"
    # A session item carries status, user and counters: the policy cannot write one.
    assert "status" not in allowed and "user_id" not in allowed
