"""Worker side of the last good config: refreshed on a thread, failures logged and counted."""

from __future__ import annotations

from voice.config import ConfigError, LoadedConfig, default_config_cache, on_config_failure
from worker.emf import EmfEmitter
from worker.logs import logger
from worker.settings import WorkerEnv

METRIC = "ConfigLoadFailed"


class ConfigFailureReport:
    """Logs the failed refresh (key paths and source are in the error) and emits the metric."""

    def __init__(self, emf: EmfEmitter) -> None:
        self._emf = emf

    def __call__(self, error: ConfigError, last: LoadedConfig) -> None:
        logger.error(
            "config refresh failed; the last good config keeps serving",
            source=error.source,
            error=str(error),
            serving_version=last.version,
        )
        self._emf.emit({METRIC: (1, "Count")}, source=error.source, serving_version=last.version)


_report: ConfigFailureReport | None = None


def watch_config(env: WorkerEnv) -> LoadedConfig:
    """Loads the config (raising if there was never a good one) and keeps it fresh off the loop."""
    global _report
    if _report is None:
        _report = ConfigFailureReport(EmfEmitter(env.metrics_namespace))
        on_config_failure(_report)
    return default_config_cache().start_background_refresh()
