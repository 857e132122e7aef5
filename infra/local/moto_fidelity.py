"""Makes the emulator's DynamoDB serialize calls, as DynamoDB's own transactions behave.

moto rolls a failed transaction back by restoring a deep copy of the whole table taken when the
transaction began, which wipes writes other threads made meanwhile (a counter increment lost
while its session item stays: a user over their limit). Real DynamoDB serializes conflicting
transactions instead. Each call still interleaves freely with the others, so a read-then-write
limit check would still race; only conditional writes hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_METHODS = ("transact_write_items", "get_item", "put_item", "update_item", "query", "scan")
_lock = threading.RLock()


def serialize_dynamodb(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Wraps moto's DynamoDB backend calls in one lock; `patch` may be a monkeypatch's setattr."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _METHODS:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_serialized", False):
            continue

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return _original(self, *args, **kwargs)

        locked._serialized = True  # type: ignore[attr-defined]
        patch(DynamoDBBackend, name, locked)
