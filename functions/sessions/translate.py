"""Storage errors become the caller's domain errors here, and only here."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from functions.domain.errors import (
    AccountLimitReached,
    DependencyUnavailable,
    EndUserLimitReached,
    InvalidRequest,
    SessionLimitReached,
    WebhookRejected,
)
from functions.store.errors import BadCursor, LimitExceeded, Rejected, StoreError

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except LimitExceeded as exc:
        raise _limit_reached(exc) from exc
    except BadCursor as exc:
        raise InvalidRequest("cursor: not a cursor from a previous GET /sessions response") from exc
    except Rejected as exc:
        raise WebhookRejected(str(exc)) from exc
    except StoreError as exc:
        raise DependencyUnavailable(str(exc)) from exc


def _limit_reached(exc: LimitExceeded) -> SessionLimitReached:
    """The 429 names the limit that was hit, and how to get under it."""
    end_one = "end one with DELETE /voice/realtime/session/{id} and try again"
    if exc.kind == "account":
        return AccountLimitReached(
            f"your account already has {exc.limit} live sessions, its limit "
            f"(max_sessions_per_account, or the account's own); {end_one}; GET "
            "/voice/realtime/usage shows the count"
        )
    if exc.kind == "end_user":
        return EndUserLimitReached(
            f"this end_user_id already has {exc.limit} live sessions, the limit "
            f"(max_sessions_per_user = {exc.limit}); {end_one}"
        )
    return SessionLimitReached(
        f"you already have {exc.limit} live sessions, the limit "
        f"(max_sessions_per_user = {exc.limit}); {end_one}"
    )


def translated(fn: F) -> F:
    """Runs a service method (sync or async) inside `domain_errors`."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with domain_errors():
                return await fn(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with domain_errors():
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]
