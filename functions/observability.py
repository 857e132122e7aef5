"""One Powertools logger and one metrics object for the whole control plane."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "control-plane")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or os.environ.get(
    "METRICS_NAMESPACE", "VoiceAgents"
)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
