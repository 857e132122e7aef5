"""Where the local stack finds the repository, its config, and the folder it keeps state in."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "config" / "voice_config.yaml"
STATE_DIR = ROOT / ".local"
