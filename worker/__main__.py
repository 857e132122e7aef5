"""`python -m worker start|dev`: runs the agent worker against $LIVEKIT_URL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voice.config import ConfigError, get_config
from worker.logs import configure_logging, logger
from worker.settings import WorkerEnv

APP = Path(__file__).with_name("app.py")


def agents_argv(command: str, *, level: str, url: str | None) -> list[str]:
    """Arguments for `python -m livekit.agents`: `start`, or `start --dev` for dev."""
    argv = ["start", str(APP), "--log-level", level, "--log-format", "json"]
    if url:
        argv += ["--url", url]
    if command == "dev":
        argv.append("--dev")
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("command", choices=["start", "dev"], help="start: production; dev: local")
    parser.add_argument("--log-level", default=None, help="default: $LOG_LEVEL or INFO")
    parser.add_argument("--url", help="LiveKit URL (default: $LIVEKIT_URL)")
    args = parser.parse_args(argv)

    env = WorkerEnv.from_env()
    level = (args.log_level or env.log_level).upper()
    configure_logging(level)
    try:
        loaded = get_config()
    except ConfigError as exc:
        logger.error("invalid voice config", source=exc.source, error=str(exc))
        return 2
    settings = loaded.config.realtime.worker
    logger.info(
        "worker config",
        source=loaded.source,
        version=loaded.version,
        agent_name=settings.agent_name,
        num_idle_processes=(
            settings.max_jobs
            if settings.num_idle_processes is None
            else settings.num_idle_processes
        ),
        port=settings.port,
        max_jobs=settings.max_jobs,
    )

    # Imported after the config check: livekit.agents costs ~1 s to import.
    from livekit.agents.__main__ import main as agents_main

    # The library's own `python -m livekit.agents start`: signal handling, drain on SIGTERM
    # (start only; --dev closes at once and never reloads), then close.
    return agents_main(agents_argv(args.command, level=level, url=args.url))


if __name__ == "__main__":
    sys.exit(main())
