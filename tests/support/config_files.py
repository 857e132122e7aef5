"""The repo's voice config with a few keys changed, written where a test can point VOICE_CONFIG_URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.local.paths import CONFIG_FILE


def config_with(path: Path, realtime: dict[str, Any]) -> Path:
    """Writes the repo config with `realtime` sections merged over voice.realtime's; returns path."""
    data = yaml.safe_load(CONFIG_FILE.read_text())
    current = data["voice"]["realtime"]
    for section, values in realtime.items():
        if isinstance(values, dict):
            current[section] = {**current.get(section, {}), **values}
        else:
            current[section] = values
    path.write_text(yaml.safe_dump(data))
    return path
