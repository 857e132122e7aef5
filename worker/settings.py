"""The worker's environment, validated once at start-up so a bad value fails loudly and early."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SERVICE_NAME = "voice-worker"


class WorkerEnv(BaseModel):
    model_config = ConfigDict(frozen=True)

    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    reports_bucket: str | None = None
    # The control plane's table: the session check reads it, heartbeats go to it. Unset, the
    # worker runs on its own (no check, no heartbeat), as in the worker-only tests.
    sessions_table: str | None = None
    reports_dir: str = "./reports"
    metrics_namespace: str = Field(default="VoiceAgents", min_length=1)
    ecs_agent_uri: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerEnv:
        env = os.environ if env is None else env
        fields = {name: env.get(name.upper()) for name in cls.model_fields if env.get(name.upper())}
        return cls.model_validate(fields)
