"""The unified voice config: schema, loader (file, S3, SSM), env overrides and redaction."""

from voice.config.loader import (
    WORKER_ENV_OVERRIDES,
    ConfigCache,
    ConfigError,
    ConfigStatus,
    LoadedConfig,
    config_status,
    default_config_cache,
    get_config,
    load_config,
    on_config_failure,
    parse_config,
    redact,
    reset_config_cache,
)
from voice.config.schema import VoiceConfig

__all__ = [
    "WORKER_ENV_OVERRIDES",
    "ConfigCache",
    "ConfigError",
    "ConfigStatus",
    "LoadedConfig",
    "VoiceConfig",
    "config_status",
    "default_config_cache",
    "get_config",
    "load_config",
    "on_config_failure",
    "parse_config",
    "redact",
    "reset_config_cache",
]
