"""Control plane side of the last good config: a failed refresh is logged and counted as EMF."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from functions.observability import NAMESPACE, SERVICE, logger
from voice.config import ConfigError, LoadedConfig, on_config_failure

METRIC = "ConfigLoadFailed"


def report_config_failure(error: ConfigError, last: LoadedConfig) -> None:
    # The error text names each bad key path and the source; the last good version keeps serving.
    logger.error(
        "config refresh failed; the last good config keeps serving",
        extra={"source": error.source, "error": str(error), "serving_version": last.version},
    )
    # single_metric flushes at once: a refresh may run outside any handler that flushes metrics.
    with single_metric(
        name=METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ):
        pass


def watch_config() -> None:
    """Registers the report for the process-wide config cache (idempotent)."""
    on_config_failure(report_config_failure)
