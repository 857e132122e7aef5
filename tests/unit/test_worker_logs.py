"""The worker's logs never carry what livekit-agents marks as personal (`lk.pii.*` extras)."""

from __future__ import annotations

import logging

import pytest

from worker.logs import drop_pii_extras


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Keep:
    handler = Keep()
    log = logging.getLogger("livekit.agents.test-pii")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)


def test_a_library_line_keeps_its_fields_but_not_what_the_caller_said(kept: Keep) -> None:
    drop_pii_extras()
    log = logging.getLogger("livekit.agents.test-pii")
    log.info("amd prediction", extra={"category": "machine-vm", "lk.pii.transcript": "Hi Dana"})
    log.warning("skipping reply", extra={"lk.pii.user_input": "my card is 4111"})
    first, second = kept.records
    assert first.__dict__["category"] == "machine-vm"
    assert "lk.pii.transcript" not in first.__dict__
    assert "lk.pii.user_input" not in second.__dict__
    assert all(
        "Dana" not in str(r.__dict__) and "4111" not in str(r.__dict__) for r in kept.records
    )


def test_dropping_is_installed_once() -> None:
    drop_pii_extras()
    installed = logging.Logger.makeRecord
    drop_pii_extras()
    assert logging.Logger.makeRecord is installed
