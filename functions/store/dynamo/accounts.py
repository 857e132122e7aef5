"""Accounts in the table: each one's live-session counter (with its own limit, if set) and usage."""

from __future__ import annotations

from typing import Any

from functions.domain.models import CounterRef, LimitKind, UsageRow
from functions.store.dynamo.guard import dynamo_errors, query_pages
from functions.store.dynamo.items import limit_key, serialize, usage_pk, usage_row


def _account(account_id: str) -> CounterRef:
    return CounterRef(kind=LimitKind.ACCOUNT, owner=account_id)


class AccountStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def limit(self, account_id: str, default: int) -> int:
        """The account's own limit, else `default`."""
        own = self._counter(account_id).get("max_live", {}).get("N")
        return default if own is None else int(own)

    def live(self, account_id: str) -> int:
        """Live sessions the account holds now, as its counter says."""
        return int(self._counter(account_id).get("live", {}).get("N", "0"))

    def _counter(self, account_id: str) -> dict[str, Any]:
        with dynamo_errors():
            resp = self._client.get_item(
                TableName=self._table, Key=limit_key(_account(account_id)), ConsistentRead=True
            )
        return resp.get("Item", {})

    def set_limit(self, account_id: str, limit: int | None) -> None:
        """Gives the account its own limit; None goes back to the config's default."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Key": limit_key(_account(account_id))}
        if limit is None:
            kwargs["UpdateExpression"] = "REMOVE max_live"
        else:
            # `live` is set with it, so a create's condition can compare the two.
            kwargs["UpdateExpression"] = "SET max_live = :max, live = if_not_exists(live, :zero)"
            kwargs["ExpressionAttributeValues"] = serialize({":max": limit, ":zero": 0})
        with dynamo_errors():
            self._client.update_item(**kwargs)

    def usage(self, account_id: str, first_day: str, last_day: str) -> list[UsageRow]:
        """The account's call time per day and agent version, days `first_day`..`last_day`."""
        pages = query_pages(
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": usage_pk(account_id)},
                ":first": {"S": first_day},
                # Sort keys are `<day>#…`, and "$" sorts right after "#": the whole last day.
                ":last": {"S": f"{last_day}$"},
            },
        )
        return [usage_row(item) for page in pages for item in page.get("Items", [])]
