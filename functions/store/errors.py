"""Storage-level errors every store raises; the service decides what a caller is told."""

from __future__ import annotations


class StoreError(Exception):
    """A store call did not do what was asked."""


class StoreUnavailable(StoreError):
    """The backing service (DynamoDB, LiveKit) could not be reached or refused the call."""


class Contended(StoreUnavailable):
    """A transaction collided with another one writing the same items; retrying soon helps."""


class Conflict(StoreError):
    """A conditional write found an item in another state; `failed[i]` is item i's condition."""

    def __init__(self, failed: list[bool]) -> None:
        super().__init__("a conditional write found the stored item in another state")
        self.failed = failed


class LimitExceeded(StoreError):
    """A counter is already at its limit; `kind` says which (user, end_user, account)."""

    def __init__(self, limit: int, kind: str = "user") -> None:
        super().__init__(f"the {kind} counter is at its limit of {limit}")
        self.limit = limit
        self.kind = kind


class BadCursor(StoreError):
    """A page cursor that this store did not issue (or issued for someone else)."""


class Rejected(StoreError):
    """A signed message did not verify."""
