"""Storage errors become the caller's domain errors here, and only here."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from functions.domain.errors import (
    DependencyUnavailable,
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
        raise SessionLimitReached(
            f"you already have {exc.limit} live sessions, the limit "
            f"(max_sessions_per_user = {exc.limit}); end one with "
            "DELETE /voice/realtime/session/{id} and try again"
        ) from exc
    except BadCursor as exc:
        raise InvalidRequest("cursor: not a cursor from a previous GET /sessions response") from exc
    except Rejected as exc:
        raise WebhookRejected(str(exc)) from exc
    except StoreError as exc:
        raise DependencyUnavailable(str(exc)) from exc


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
