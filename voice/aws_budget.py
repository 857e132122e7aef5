"""One budget of AWS time per API request: no attempt of a budgeted boto3 client waits past it.

botocore's timeouts bound one attempt; a request makes several calls (a config refresh from S3,
the key lookup, admission, the create transaction), each with retries. The budget bounds them
all together: a client passed through `budgeted` gives each attempt a read timeout no longer
than what is left of the request's budget, and starts none once too little is left, so the
request can answer 503 instead of waiting on a stalled service. Outside a budget (the worker,
scheduled jobs) nothing changes.
"""

from __future__ import annotations

import threading
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
    # Since when (monotonic) at least one AWS call is in progress, None between calls; calls
    # made side by side (a sharded read) spend the time they overlap once.
    busy_since: float | None = field(default=None, repr=False)
    in_flight: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def left(self) -> float:
        busy_since = self.busy_since
        running = 0.0 if busy_since is None else time.monotonic() - busy_since
        return self.seconds - self.spent - running

    def call_started(self) -> None:
        with self._lock:
            if self.in_flight == 0:
                self.busy_since = time.monotonic()
            self.in_flight += 1

    def call_ended(self) -> None:
        with self._lock:
            if self.in_flight == 0:
                return
            self.in_flight -= 1
            if self.in_flight == 0 and self.busy_since is not None:
                self.spent += time.monotonic() - self.busy_since
                self.busy_since = None


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


@contextmanager
def spending() -> Iterator[None]:
    """Inside, the request's budget runs as if an AWS call were in flight, whether or not one is:
    for a wait on AWS work done elsewhere (reads queued for a thread pool). Outside a budget,
    nothing happens."""
    budget = _current.get()
    if budget is None:
        yield
        return
    budget.call_started()
    try:
        yield
    finally:
        budget.call_ended()


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
        budget.call_started()


def _call_ended(**_: Any) -> None:
    budget = _current.get()
    if budget is not None:
        budget.call_ended()
