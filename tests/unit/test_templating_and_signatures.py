"""`{{name}}` filling and the Voice-Signature helpers receivers use."""

from __future__ import annotations

import pytest

from voice.templating import fill
from voice.webhooks import SignatureError, event_id, sign, verify

SECRET = "whsec-test"


def test_fill_replaces_known_placeholders_and_leaves_unknown_ones() -> None:
    text = "Hello {{ name }}, order {{order}}; {{missing}} stays."
    assert fill(text, {"name": "Dana", "order": "A-17"}) == (
        "Hello Dana, order A-17; {{missing}} stays."
    )


def test_a_signature_made_with_the_secret_verifies() -> None:
    body = b'{"id":"e1"}'
    verify(SECRET, body, sign(SECRET, body, 1_700_000_000), now=1_700_000_010)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"e1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, 1_700_000_000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(
    ("header", "body", "now", "why"),
    [
        (None, b"{}", 1_700_000_000, "missing"),
        ("t=x,v1=y", b"{}", 1_700_000_000, "malformed"),
        (sign(SECRET, b"{}", 1_700_000_000), b"{ }", 1_700_000_000, "does not match"),
        (sign("other", b"{}", 1_700_000_000), b"{}", 1_700_000_000, "does not match"),
        (sign(SECRET, b"{}", 1_700_000_000), b"{}", 1_700_001_000, "tolerance"),
    ],
)
def test_a_bad_or_stale_signature_is_refused(
    header: str | None, body: bytes, now: int, why: str
) -> None:
    with pytest.raises(SignatureError, match=why):
        verify(SECRET, body, header, now=now)


def test_event_ids_are_stable_per_session_and_type() -> None:
    assert event_id("s1", "session.ended") == event_id("s1", "session.ended")
    assert event_id("s1", "session.ended") != event_id("s1", "session.started")
