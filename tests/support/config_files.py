"""The repo's voice config with a few keys changed, written where a test can point VOICE_CONFIG_URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.local.paths import CONFIG_FILE


def config_with(
    path: Path, realtime: dict[str, Any], openai: dict[str, dict[str, Any]] | None = None
) -> Path:
    """Writes the repo config with `realtime` sections merged over voice.realtime's and `openai`
    ones (stt, llm, tts) over voice.providers.openai's; returns path."""
    data = yaml.safe_load(CONFIG_FILE.read_text())
    _merge(data["voice"]["realtime"], realtime)
    _merge(data["voice"]["providers"]["openai"], openai or {})
    path.write_text(yaml.safe_dump(data))
    return path


def _merge(current: dict[str, Any], sections: dict[str, Any]) -> None:
    for section, values in sections.items():
        if isinstance(values, dict):
            current[section] = {**current.get(section, {}), **values}
        else:
            current[section] = values
