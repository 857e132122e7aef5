"""One budget of DynamoDB time per API request: no attempt starts that could outlast it.

botocore's timeouts bound one attempt; a request makes several calls (key lookup, admission,
the create transaction), each with retries. The budget bounds them all together: a client built
by `budgeted` refuses an attempt when what is left of the request's budget is less than one
attempt can take, and the request answers 503 instead of waiting on a stalled table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from functions.store.errors import StoreUnavailable


class BudgetSpent(StoreUnavailable):
    """The request's DynamoDB budget cannot cover another attempt."""


@dataclass
class DynamoBudget:
    seconds: float
    spent: float = 0.0
    # When the DynamoDB call in progress started (monotonic), None between calls.
    call_started: float | None = field(default=None, repr=False)

    def left(self) -> float:
        running = 0.0 if self.call_started is None else time.monotonic() - self.call_started
        return self.seconds - self.spent - running


_current: ContextVar[DynamoBudget | None] = ContextVar("dynamo_budget", default=None)


@contextmanager
def dynamo_budget(seconds: float) -> Iterator[DynamoBudget]:
    """Everything inside (threads the request runs in included) shares one DynamoDB budget."""
    budget = DynamoBudget(seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def budgeted(client: Any, attempt_seconds: float) -> Any:
    """Makes `client` honour the current request's budget; `attempt_seconds` is the longest one
    attempt can take (its connect plus read timeout). Outside a request nothing changes."""
    events = client.meta.events
    events.register("before-call.dynamodb", _call_started)
    events.register("after-call.dynamodb", _call_ended)
    events.register("after-call-error.dynamodb", _call_ended)

    def before_attempt(**_: Any) -> None:
        budget = _current.get()
        if budget is not None and budget.left() < attempt_seconds:
            raise BudgetSpent(
                f"the session store did not answer within this request's {budget.seconds:g} s "
                "budget; try again shortly"
            )

    events.register("before-send.dynamodb", before_attempt)
    return client


def _call_started(**_: Any) -> None:
    budget = _current.get()
    if budget is not None:
        budget.call_started = time.monotonic()


def _call_ended(**_: Any) -> None:
    budget = _current.get()
    if budget is not None and budget.call_started is not None:
        budget.spent += time.monotonic() - budget.call_started
        budget.call_started = None
