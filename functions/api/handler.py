"""Lambda entry point of the API: Mangum around the FastAPI app, with Powertools logs and metrics."""

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from functions import snapstart, tracing
from functions.aio import event_loop
from functions.api.app import app
from functions.observability import logger, metrics

_asgi = Mangum(app, lifespan="off")
snapstart.register()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    event_loop()  # Mangum runs on the current loop: make sure an open one is set
    try:
        return _asgi(event, context)
    finally:
        tracing.flush()  # before the runtime freezes the process
