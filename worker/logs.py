"""loguru set-up: JSON lines on stderr (stdout carries EMF), with session_id / room / job_id."""

from __future__ import annotations

import sys

from loguru import logger

_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Idempotent per process: job processes start without the main process's sinks."""
    global _configured
    if _configured:
        return
    logger.remove()
    logger.add(sys.stderr, level=level.upper(), serialize=True, backtrace=False, diagnose=False)
    _configured = True


__all__ = ["configure_logging", "logger"]
