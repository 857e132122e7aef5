"""People's names out of a transcript, by a model (`voice.realtime.privacy.name_redactor`).

Fails closed: when the model does not answer, or answers with other lines than it was given,
`NameRedactionFailed` is raised and the caller keeps no transcript at all."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from voice.chat_json import ModelUnavailable, chat_json
from voice.config.analysis import NameRedactor
from voice.privacy import NAME_PLACEHOLDER

if TYPE_CHECKING:
    from voice.report import TranscriptEntry

# The name the structured-output request carries (the test server answers it by this name).
SCHEMA_NAME = "redacted_transcript"
SCHEMA = {
    "type": "object",
    "properties": {"lines": {"type": "array", "items": {"type": "string"}}},
    "required": ["lines"],
    "additionalProperties": False,
}
INSTRUCTIONS = (
    "You redact transcripts. You get a JSON object with `lines`, the lines of a phone call. "
    f"Return the same lines, in the same order and as many, with every person's name (first "
    f"names, last names, nicknames) replaced by {NAME_PLACEHOLDER}. Change nothing else: keep "
    "every other word, placeholder such as [phone] and punctuation exactly as given."
)


class NameRedactionFailed(RuntimeError):
    """No redacted transcript could be had; the message says why without any of its text."""


def redact_names(
    entries: list[TranscriptEntry], redactor: NameRedactor, api_key: str | None = None
) -> list[TranscriptEntry]:
    """`entries` with people's names replaced by [name]; raises `NameRedactionFailed`."""
    if not entries:
        return []
    lines = [e.text for e in entries]
    messages = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": json.dumps({"lines": lines})},
    ]
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    try:
        answer = chat_json(redactor, messages, SCHEMA_NAME, SCHEMA, api_key=key)
    except ModelUnavailable as exc:
        raise NameRedactionFailed(str(exc)) from None
    try:
        redacted = json.loads(answer)["lines"]
    except (ValueError, KeyError, TypeError):
        raise NameRedactionFailed("the redactor's answer is not {lines: [...]}") from None
    if not isinstance(redacted, list) or len(redacted) != len(lines):
        raise NameRedactionFailed(
            f"the redactor returned {len(redacted) if isinstance(redacted, list) else 'no'} "
            f"lines for {len(lines)}"
        )
    if not all(isinstance(t, str) for t in redacted):
        raise NameRedactionFailed("the redactor returned lines that are not text")
    return [e.model_copy(update={"text": t}) for e, t in zip(entries, redacted, strict=True)]
