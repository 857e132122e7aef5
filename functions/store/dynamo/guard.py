"""Guarded DynamoDB calls: the one place botocore's errors become storage errors; paging."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from functions.store.errors import Conflict, Contended, StoreUnavailable
from voice.aws_budget import BudgetSpent, spending
from voice.table import every_shard

T = TypeVar("T")
# Reads of a sharded key go out side by side: one round trip's latency, not one per shard.
_shard_reads = ThreadPoolExecutor(max_workers=len(every_shard("")), thread_name_prefix="shard-read")


@contextmanager
def dynamo_errors() -> Iterator[None]:
    """A failed condition becomes `Conflict`, a collision with another transaction `Contended`,
    any other failure `StoreUnavailable`."""
    try:
        yield
    except ClientError as exc:
        failed = _failed_conditions(exc)
        if failed is not None:
            raise Conflict(failed) from exc
        if _contended(exc):
            raise Contended(
                "another request is writing the same items right now; try again in a second"
            ) from exc
        raise _unavailable(exc) from exc
    except BotoCoreError as exc:
        raise _unavailable(exc) from exc
    except BudgetSpent as exc:
        raise StoreUnavailable(str(exc)) from exc


def applied(write: Callable[[], object]) -> bool:
    """Runs one conditional write: True if it applied, False if its condition failed."""
    try:
        with dynamo_errors():
            write()
    except Conflict:
        return False
    return True


def transact(client: Any, items: list[dict[str, Any]]) -> list[bool]:
    """Runs one transaction: [] when it applied, else which items' conditions failed."""
    try:
        with dynamo_errors():
            client.transact_write_items(TransactItems=items)
    except Conflict as exc:
        return exc.failed
    return []


def query_pages(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every page of a query, following `LastEvaluatedKey`."""
    while True:
        with dynamo_errors():
            resp = client.query(**kwargs)
        yield resp
        if "LastEvaluatedKey" not in resp:
            return
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def per_shard(read: Callable[[str], T], keys: list[str]) -> list[T]:
    """`read(key)` for every key, in parallel, each in the caller's context (its AWS budget).

    The request's budget runs from the first submit to the last answer: time its reads wait for
    a free thread (behind other requests' reads, where one process serves several) counts."""
    with spending():
        futures = [_shard_reads.submit(contextvars.copy_context().run, read, key) for key in keys]
        return [f.result() for f in futures]


def _failed_conditions(exc: ClientError) -> list[bool] | None:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return [True]
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        failed = [r.get("Code") == "ConditionalCheckFailed" for r in reasons]
        if any(failed):
            return failed
    return None


def _contended(exc: ClientError) -> bool:
    # DynamoDB cancels a transaction that touches an item another transaction is writing.
    code = exc.response["Error"]["Code"]
    reasons = exc.response.get("CancellationReasons", [])
    return code == "TransactionConflictException" or (
        code == "TransactionCanceledException"
        and any(r.get("Code") == "TransactionConflict" for r in reasons)
    )


def _unavailable(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(
        f"the session store is unavailable, try again shortly ({type(exc).__name__})"
    )
