"""The module `python -m livekit.agents start` imports: it builds `server` from the voice config."""

from __future__ import annotations

from voice.config import get_config
from worker.server import build_server
from worker.settings import WorkerEnv

# The library's CLI discovers the worker as this module's `server`; `python -m worker` checks
# the config before anything imports this module.
server = build_server(get_config().config, WorkerEnv.from_env())
