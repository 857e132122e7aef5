"""One budget of AWS time per API request: no attempt of a budgeted boto3 client waits past it.

botocore's timeouts bound one attempt; a request makes several calls (a config refresh from S3,
the key lookup, admission, the create transaction), each with retries. The budget bounds them
all together: a client passed through `budgeted` gives each attempt a read timeout no longer
than what is left of the request's budget, and starts none once too little is left, so the
request can answer 503 instead of waiting on a stalled service. Outside a budget (the worker,
scheduled jobs) nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# Less than this left of a budget: no attempt could get an answer, none is started.
MIN_ATTEMPT_SECONDS = 0.2


class BudgetSpent(TimeoutError):
    """The request's AWS budget cannot cover another attempt."""


@dataclass
class AwsBudget:
    seconds: float
    spent: float = 0.0
    # When the AWS call in progress started (monotonic), None between calls.
    call_started: float | None = field(default=None, repr=False)

    def left(self) -> float:
        running = 0.0 if self.call_started is None else time.monotonic() - self.call_started
        return self.seconds - self.spent - running


_current: ContextVar[AwsBudget | None] = ContextVar("aws_budget", default=None)


@contextmanager
def aws_budget(seconds: float) -> Iterator[AwsBudget]:
    """Everything inside (threads the request runs in included) shares one AWS budget."""
    budget = AwsBudget(seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def budgeted(client: Any) -> Any:
    """Makes `client` honour the current request's budget; returns it."""
    service = client.meta.service_model.service_id.hyphenize()
    read_timeout = float(client.meta.config.read_timeout)
    events = client.meta.events

    def before_attempt(request: Any, **_: Any) -> None:
        budget = _current.get()
        if budget is None:
            return
        left = budget.left()
        if left < MIN_ATTEMPT_SECONDS:
            raise BudgetSpent(
                f"{service} did not answer within this request's {budget.seconds:g} s budget; "
                "try again shortly"
            )
        # botocore reads a per-request read timeout from the request's context.
        request.context["read_timeout"] = min(read_timeout, left)

    events.register(f"before-call.{service}", _call_started)
    events.register(f"after-call.{service}", _call_ended)
    events.register(f"after-call-error.{service}", _call_ended)
    events.register(f"before-send.{service}", before_attempt)
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
