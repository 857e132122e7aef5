"""Redacting personal data from what a call leaves behind (transcripts in reports, and so in the
transcript API and webhooks): phone numbers, e-mail addresses, card numbers, national ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from voice.report import TranscriptEntry

PiiKind = Literal["email", "card", "national_id", "phone"]
PII_KINDS: tuple[str, ...] = get_args(PiiKind)
# People's names have no pattern: a model finds them (voice.realtime.privacy.name_redactor).
NAME = "name"
RedactKind = Literal[PiiKind, "name"]
NAME_PLACEHOLDER = "[name]"

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# 13 to 19 digits, optionally grouped by spaces or dashes: a card number if its Luhn sum holds.
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# US SSN (123-45-6789), UK National Insurance number (AB 12 34 56 C), and a bare 9-digit SSN only
# where it is written with separators, to spare order numbers.
_NATIONAL_ID = re.compile(
    r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.I
)
# A whole run of digits with the usual separators: 10 to 15 digits, or 7 to 15 after a "+"
# (a date or an amount is shorter; a longer run is something else, e.g. a card).
_PHONE_RUN = re.compile(r"(?<![\w+])(?<!\d[ .-])\+?\(?\d(?:[ ().-]{0,2}\d){6,14}(?![ .-]?\d)")


def _phones(text: str) -> str:
    def phone(m: re.Match[str]) -> str:
        digits = len(re.sub(r"\D", "", m.group(0)))
        plus = m.group(0).startswith("+")
        return "[phone]" if 10 <= digits <= 15 or (plus and digits >= 7) else m.group(0)

    return _PHONE_RUN.sub(phone, text)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> str:
    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "[card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)

    return _CARD.sub(card, text)


# Order matters: an e-mail may hold digits, a card number looks like a long phone number.
_REDACTORS: dict[str, Callable[[str], str]] = {
    "email": lambda t: _EMAIL.sub("[email]", t),
    "card": _cards,
    "national_id": lambda t: _NATIONAL_ID.sub("[national_id]", t),
    "phone": _phones,
}


def kept_transcript(
    entries: list[TranscriptEntry], kinds: Iterable[str], store: bool
) -> list[TranscriptEntry]:
    """What a report keeps of a call's transcript under the privacy settings."""
    if not store:
        return []
    chosen = list(kinds)
    if not chosen:
        return list(entries)
    return [e.model_copy(update={"text": redact(e.text, chosen)}) for e in entries]


def redact(text: str, kinds: Iterable[str]) -> str:
    """`text` with each chosen kind of personal data replaced by its placeholder (`[phone]`...)."""
    chosen = set(kinds)
    for kind, redactor in _REDACTORS.items():
        if kind in chosen:
            text = redactor(text)
    return text
