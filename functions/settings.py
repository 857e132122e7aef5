"""Control-plane settings from the environment, validated once at cold start."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from functions.store.livekit import LiveKitCredentials

# The LiveKit dev server's well-known credentials; fine on loopback, refused anywhere else.
DEV_LIVEKIT_KEY = "devkey"
DEV_LIVEKIT_SECRET = "secret"


class Settings(BaseModel):
    environment: Literal["local", "aws"] = "local"
    sessions_table: str = "voice-sessions"
    livekit_url: str = "ws://127.0.0.1:7880"
    livekit_api_key: str = DEV_LIVEKIT_KEY
    livekit_api_secret: str = Field(default=DEV_LIVEKIT_SECRET, repr=False)
    livekit_timeout_seconds: float = 3.0
    # AWS time (DynamoDB, a config refresh) one API request may spend in all, retries included,
    # before it answers 503.
    aws_budget_seconds: float = Field(default=3.0, gt=0.0, le=10.0)
    max_body_bytes: int = 16 * 1024
    metrics_namespace: str = "VoiceAgents"
    reports_bucket: str | None = None
    # The agent watchdog's SQS queue; unset, a join schedules no check (the reaper still does).
    agent_watchdog_queue_url: str | None = None
    # Customer webhooks: the outbox queue, its dead-letter queue, the signing secret, retries.
    webhook_queue_url: str | None = None
    webhook_dlq_url: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
    webhook_retry_base_seconds: int = Field(default=10, ge=1, le=900)
    webhook_retry_window_seconds: int = Field(default=3600, ge=1)
    webhook_report_wait_seconds: int = Field(default=120, ge=0, le=3600)
    # The post-call analysis model's key (OPENAI_API_KEY, or the secret OPENAI_API_KEY_SECRET_ARN).
    openai_api_key: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_local(self) -> Settings:
        if self.environment != "local" and (
            self.livekit_api_secret in ("", DEV_LIVEKIT_SECRET)
            or self.livekit_api_key == DEV_LIVEKIT_KEY
        ):
            raise ValueError(
                "LIVEKIT_API_KEY / LIVEKIT_API_SECRET hold the dev placeholders outside local: "
                "set LIVEKIT_API_SECRET_ARN to the Secrets Manager secret"
            )
        return self

    @property
    def livekit(self) -> LiveKitCredentials:
        return LiveKitCredentials(self.livekit_url, self.livekit_api_key, self.livekit_api_secret)


def _secret_from_arn(arn: str) -> str:
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return value.strip()


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    mapping = {
        "ENVIRONMENT": "environment",
        "SESSIONS_TABLE": "sessions_table",
        "LIVEKIT_URL": "livekit_url",
        "LIVEKIT_API_KEY": "livekit_api_key",
        "LIVEKIT_API_SECRET": "livekit_api_secret",
        "LIVEKIT_TIMEOUT_SECONDS": "livekit_timeout_seconds",
        "AWS_BUDGET_SECONDS": "aws_budget_seconds",
        "MAX_BODY_BYTES": "max_body_bytes",
        "METRICS_NAMESPACE": "metrics_namespace",
        "REPORTS_BUCKET": "reports_bucket",
        "AGENT_WATCHDOG_QUEUE_URL": "agent_watchdog_queue_url",
        "WEBHOOK_QUEUE_URL": "webhook_queue_url",
        "WEBHOOK_DLQ_URL": "webhook_dlq_url",
        "VOICE_WEBHOOK_SECRET": "webhook_secret",
        "WEBHOOK_RETRY_BASE_SECONDS": "webhook_retry_base_seconds",
        "WEBHOOK_RETRY_WINDOW_SECONDS": "webhook_retry_window_seconds",
        "WEBHOOK_REPORT_WAIT_SECONDS": "webhook_report_wait_seconds",
        "OPENAI_API_KEY": "openai_api_key",
    }
    for var, field in mapping.items():
        if env.get(var):
            values[field] = env[var]
    if env.get("LIVEKIT_API_SECRET_ARN"):
        values["livekit_api_secret"] = _secret_from_arn(env["LIVEKIT_API_SECRET_ARN"])
    if env.get("VOICE_WEBHOOK_SECRET_ARN"):
        values["webhook_secret"] = _secret_from_arn(env["VOICE_WEBHOOK_SECRET_ARN"])
    if env.get("OPENAI_API_KEY_SECRET_ARN"):
        values["openai_api_key"] = _secret_from_arn(env["OPENAI_API_KEY_SECRET_ARN"])
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
