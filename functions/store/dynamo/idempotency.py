"""Item encoding of `Idempotency-Key` claims: one item per user and key, beside the user's counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.domain.models import IdempotencyClaim
from functions.store.dynamo.items import deserialize, iso, serialize


def claim_key(user_id: str, key_hash: str) -> dict[str, Any]:
    # In the user's own partition: one user's key can never name another user's claim.
    return {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"IDEMPOTENCY#{key_hash}"}}


def claim_put(table: str, claim: IdempotencyClaim) -> dict[str, Any]:
    """The transaction item that takes the key, unless a claim that has not expired holds it."""
    return {
        "TableName": table,
        "Item": serialize(
            {
                "pk": f"USER#{claim.user_id}",
                "sk": f"IDEMPOTENCY#{claim.key_hash}",
                "type": "idempotency",
                "user_id": claim.user_id,
                "key_hash": claim.key_hash,
                "request_hash": claim.request_hash,
                "session_id": claim.session_id,
                "token": claim.token,
                "url": claim.url,
                "created_at": iso(claim.created_at),
                "expires_at": iso(claim.expires_at),
                # DynamoDB's TTL removes it a while after it expires; reads filter before that.
                "ttl": int(claim.expires_at.timestamp()),
            }
        ),
        # An expired claim not yet removed by TTL no longer holds the key.
        "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
        "ExpressionAttributeNames": {"#ttl": "ttl"},
        "ExpressionAttributeValues": serialize({":now": int(claim.created_at.timestamp())}),
    }


def claim_record(item: dict[str, Any], now: datetime) -> IdempotencyClaim | None:
    """The claim an item holds, or None once it has expired."""
    data = deserialize(item)
    if int(data["ttl"]) <= int(now.timestamp()):
        return None
    return IdempotencyClaim.model_validate(data)
