"""The audio run's caller-felt figures from what the caller recorded: WER, percentiles, yielding."""

from __future__ import annotations

import numpy as np

from evals.audio import FRAME, RoomCaller, percentile, word_errors

LOUD = np.full(FRAME, 3000, dtype=np.int16)
QUIET = np.zeros(FRAME, dtype=np.int16)


def test_word_errors_count_substitutions_insertions_and_deletions() -> None:
    assert word_errors("We are open nine to five.", "we are open nine to five") == (0, 6)
    assert word_errors("We are open nine to five.", "we are closed nine to five") == (1, 6)
    assert word_errors("open nine to five", "open to five today") == (2, 4)
    assert word_errors("", "anything") == (1, 0)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0


async def test_an_agent_that_pauses_soon_after_the_caller_cuts_in_has_yielded() -> None:
    caller = RoomCaller()
    start = 100.0
    # Talking until 0.6 s after the caller started, silent, then its new answer from 1.4 s.
    caller.frames = [
        (start + i / 100, LOUD if i < 60 or i >= 140 else QUIET) for i in range(0, 250)
    ]
    assert caller.went_quiet(start, 1.5)


async def test_an_agent_that_talks_on_through_the_caller_has_not_yielded() -> None:
    caller = RoomCaller()
    start = 100.0
    caller.frames = [(start + i / 100, LOUD) for i in range(0, 250)]
    assert not caller.went_quiet(start, 1.5)
    # A pause that comes only after the window does not count either.
    caller.frames = [
        (start + i / 100, LOUD if i < 170 or i >= 210 else QUIET) for i in range(0, 250)
    ]
    assert not caller.went_quiet(start, 1.5)
