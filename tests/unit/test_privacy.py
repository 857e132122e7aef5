"""Redaction of personal data from stored transcripts, and the config that asks for it."""

from __future__ import annotations

import pytest

from tests.support.config_files import config_with
from voice.config import ConfigError
from voice.config.loader import load_config
from voice.privacy import PII_KINDS, kept_transcript, luhn_ok, redact
from voice.report import TranscriptEntry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me on +1 (555) 010-2233", "call me on [phone]"),
        ("or 555 010 2233 after six", "or [phone] after six"),
        ("from abroad +44 20 7946 0958.", "from abroad [phone]."),
        ("write to a.b+c@example.co.uk please", "write to [email] please"),
        ("my card is 4111 1111 1111 1111 thanks", "my card is [card] thanks"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("ssn 123-45-6789", "ssn [national_id]"),
        ("NI number AB 12 34 56 C", "NI number [national_id]"),
    ],
)
def test_each_kind_of_personal_data_is_replaced_by_its_placeholder(text, expected):
    assert redact(text, PII_KINDS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order A-17 costs 1234 dollars",
        "we open on 2026-12-04 at 09:00",
        "ticket 1234567",
        "not a card: 4111 1111 1111 1112",  # fails the Luhn check, and is no phone number
    ],
)
def test_what_is_not_personal_data_is_kept(text):
    assert redact(text, PII_KINDS) == text


def test_only_the_chosen_kinds_are_redacted():
    text = "mail dana@example.com or call +1 415 555 0132"
    assert redact(text, ["email"]) == "mail [email] or call +1 415 555 0132"
    assert redact(text, []) == text


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_a_report_keeps_the_transcript_redacted_or_none_at_all():
    entries = [
        TranscriptEntry(role="user", text="I'm on +1 415 555 0132", at="t1"),
        TranscriptEntry(role="assistant", text="Thanks!", at="t2"),
    ]
    kept = kept_transcript(entries, ["phone"], store=True)
    assert [e.text for e in kept] == ["I'm on [phone]", "Thanks!"]
    assert entries[0].text == "I'm on +1 415 555 0132", "the call's own record is untouched"
    assert kept_transcript(entries, ["phone"], store=False) == []
    assert kept_transcript(entries, [], store=True) == entries


def test_an_unknown_kind_in_the_config_names_the_key_and_what_is_allowed(tmp_path):
    path = config_with(tmp_path / "voice.yaml", {"privacy": {"redact": ["phone", "names"]}})
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert "voice.realtime.privacy.redact" in message
    assert "phone" in message and "national_id" in message
