"""loguru set-up: JSON lines on stderr (stdout carries EMF), with session_id / room / job_id."""

from __future__ import annotations

import json
import logging
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


# livekit-agents passes what the caller or a model said as `extra={"lk.pii.<name>": ...}` (the
# user's transcript on an interruption, the answering-machine detector's verdict, ...). Its
# formatters print every extra; what a caller said must never reach a log line.
PII_PREFIX = "lk.pii."


def drop_pii_extras() -> None:
    """Every log record this process makes leaves out `lk.pii.*` extras (the stdlib logging of
    the library and its plugins; loguru's own lines never carry them)."""
    if getattr(logging.Logger.makeRecord, "_drops_pii", False):
        return
    make_record = logging.Logger.makeRecord

    def without_pii(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        # makeRecord(name, level, fn, lno, msg, args, exc_info, func=None, extra=None, sinfo=None)
        extra = kwargs.get("extra", args[8] if len(args) > 8 else None)
        if extra and any(str(k).startswith(PII_PREFIX) for k in extra):
            kept = {k: v for k, v in extra.items() if not str(k).startswith(PII_PREFIX)}
            if "extra" in kwargs or len(args) <= 8:
                kwargs["extra"] = kept
            else:
                args = (*args[:8], kept, *args[9:])
        return make_record(self, *args, **kwargs)

    without_pii._drops_pii = True  # type: ignore[attr-defined]
    logging.Logger.makeRecord = without_pii  # type: ignore[method-assign]


def configure_logging(level: str = "INFO") -> None:
    """Idempotent per process: job processes start without the main process's sinks."""
    global _configured
    drop_pii_extras()
    if _configured:
        return
    logger.remove()
    logger.add(_json_sink, level=level.upper(), backtrace=False, diagnose=False)
    _configured = True


__all__ = ["configure_logging", "drop_pii_extras", "logger"]
