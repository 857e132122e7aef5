"""The account limit and configs written before accounts existed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voice.config.schema import LimitSettings


def test_a_config_without_an_account_limit_keeps_a_per_user_limit_above_the_default() -> None:
    # Written before accounts: a per-user limit of 200 stays valid, the account holds it.
    assert (
        LimitSettings.model_validate({"max_sessions_per_user": 200}).max_sessions_per_account == 200
    )
    assert LimitSettings.model_validate({}).max_sessions_per_account == 100


def test_an_account_limit_set_below_the_per_user_limit_is_refused_naming_both() -> None:
    with pytest.raises(
        ValidationError, match="max_sessions_per_account must be >= max_sessions_per_user"
    ):
        LimitSettings.model_validate(
            {"max_sessions_per_user": 200, "max_sessions_per_account": 100}
        )
