"""An account's usage: its live sessions against its limit now, and call time per day and agent version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from functions.domain.errors import InvalidRequest
from functions.domain.models import AccountUsage, Caller
from functions.sessions.ports import AccountStorage
from functions.sessions.service import Clock
from functions.sessions.translate import translated
from voice.config import LoadedConfig

DEFAULT_DAYS = 30
MAX_DAYS = 366


class UsageService:
    def __init__(
        self, accounts: AccountStorage, config: Callable[[], LoadedConfig], clock: Clock
    ) -> None:
        self._accounts = accounts
        self._config = config
        self._clock = clock

    @translated
    def usage(self, caller: Caller, first: date | None, last: date | None) -> AccountUsage:
        """The caller's account now, and its call time on days `first`..`last` (UTC; default
        the last 30 days up to today)."""
        last = last or self._clock().date()
        if first is None:
            # Clamped: a `to` in year 1 has no 29 days before it.
            first = max(
                date.min, last - timedelta(days=min(DEFAULT_DAYS - 1, (last - date.min).days))
            )
        if first > last:
            raise InvalidRequest(f"from: {first} is after to ({last}); swap them")
        if (last - first).days >= MAX_DAYS:
            raise InvalidRequest(f"from, to: at most {MAX_DAYS} days at a time; ask in pieces")
        limits = self._config().config.voice.realtime.limits
        account = caller.account_id
        return AccountUsage(
            account_id=account,
            live_sessions=self._accounts.live(account),
            limit=self._accounts.limit(account, limits.max_sessions_per_account),
            end_user_limit=limits.max_sessions_per_user,
            first_day=first,
            last_day=last,
            rows=self._accounts.usage(account, first.isoformat(), last.isoformat()),
        )
