"""`{{name}}` placeholders in instructions and greetings, filled from a call's variables."""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def fill(text: str, variables: dict[str, str]) -> str:
    """Replaces each `{{name}}` with its value; a name without a value is left as written."""
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
