"""loguru set-up: JSON lines on stderr (stdout carries EMF), with session_id / room / job_id."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message

_configured = False


def _json_sink(message: Message) -> None:
    record = message.record
    line: dict[str, Any] = {
        "timestamp": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
        **{k: v for k, v in record["extra"].items()},
    }
    if record["exception"] is not None:
        exc = record["exception"]
        line["exception"] = f"{exc.type.__name__ if exc.type else ''}: {exc.value}"
    sys.stderr.write(json.dumps(line, default=str) + "\n")


def configure_logging(level: str = "INFO") -> None:
    """Idempotent per process: job processes start without the main process's sinks."""
    global _configured
    if _configured:
        return
    logger.remove()
    logger.add(_json_sink, level=level.upper(), backtrace=False, diagnose=False)
    _configured = True


__all__ = ["configure_logging", "logger"]
