"""Loads the unified config from a file, S3 or SSM, applies env overrides, validates and caches it."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voice.aws_budget import budgeted
from voice.config.patterns import MEANINGS, KeyPathError
from voice.config.schema import VoiceConfig

DEFAULT_URI = "config/voice_config.yaml"
DEFAULT_TTL_SECONDS = 60.0
TTL_ENV = "VOICE_CONFIG_TTL_SECONDS"
MAX_TTL_SECONDS = 86400.0
# The background refresh (the worker's) re-reads the source at most this often, even at TTL 0.
MIN_REFRESH_INTERVAL = 1.0

# The reference's worker tuning overrides: env var -> key under voice.realtime.worker.
WORKER_ENV_OVERRIDES: dict[str, str] = {
    "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES": "num_idle_processes",
    "OPENAGENTS_LIVEKIT_JOB_MEMORY_WARN_MB": "job_memory_warn_mb",
    "OPENAGENTS_LIVEKIT_JOB_MEMORY_LIMIT_MB": "job_memory_limit_mb",
    "OPENAGENTS_LIVEKIT_LOAD_THRESHOLD": "load_threshold",
    "OPENAGENTS_LIVEKIT_WORKER_PORT": "port",
    "OPENAGENTS_LIVEKIT_AGENT_NAME": "agent_name",
    # Ours: jobs per worker, set by the template so it matches the task's memory arithmetic.
    "OPENAGENTS_LIVEKIT_MAX_JOBS": "max_jobs",
}

# Matches api_key, client_secret, password, authorization, access_token; not token_ttl_hours.
_SECRET_KEY = re.compile(r"(secret|api_?key|passw(or)?d|authorization|(^|_)token$)", re.IGNORECASE)
REDACTED = "***"


class ConfigError(ValueError):
    """A config that cannot be read or does not validate; the message names key, value and source."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source


@dataclass(frozen=True)
class LoadedConfig:
    config: VoiceConfig
    source: str
    # Short content hash: recorded on each session so a report says which config served it.
    version: str
    loaded_at: float


def _read_source(uri: str, *, s3_client: Any = None, ssm_client: Any = None) -> str:
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise ConfigError(f"config URI must look like s3://bucket/key (got {uri!r})", uri)
        client = s3_client or _boto_client("s3")
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # botocore errors carry the AWS reason in their text
            raise ConfigError(f"cannot read config from {uri}: {exc}", uri) from exc
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config in {uri} is not UTF-8 text: {exc.reason}", uri) from exc
    if uri.startswith("ssm:"):
        name = uri[len("ssm:") :]
        if not name:
            raise ConfigError(f"config URI must look like ssm:/parameter/name (got {uri!r})", uri)
        client = ssm_client or _boto_client("ssm")
        try:
            return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:
            raise ConfigError(f"cannot read config from {uri}: {exc}", uri) from exc
    path = Path(uri.removeprefix("file://"))
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {uri}: {exc.strerror or exc}", uri) from exc


def _boto_client(service: str) -> Any:
    import boto3  # deferred: only S3/SSM sources need it
    from botocore.config import Config

    # A stalled source fails the refresh fast (the last good config keeps serving); inside an
    # API request the read also counts against the request's AWS budget.
    config = Config(
        connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
    )
    return budgeted(boto3.client(service, config=config))


def describe_error(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    got = f" (got {err['input']!r})" if kind != "missing" and "input" in err else ""
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}{got}"
    if kind == "greater_than":
        return f"must be > {ctx['gt']}{got}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}{got}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}{got}"
    if kind == "extra_forbidden":
        return "is not a known key (check its spelling and nesting)"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of keys to values{got}"
    if kind == "string_pattern_mismatch":
        return f"must be {MEANINGS.get(ctx.get('pattern', ''), 'in the documented format')}{got}"
    if kind == "value_error":
        error = ctx.get("error", err["msg"])
        return error.message if isinstance(error, KeyPathError) else f"{error}"
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}{got}"


def _format_validation(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, KeyPathError):
            loc.append(error.path)
        path = ".".join(loc) or "(top level)"
        lines.append(f"{path}: {describe_error(err)} in {source}")
    return "\n".join(lines)


def parse_config(text: str, source: str, env: dict[str, str] | None = None) -> VoiceConfig:
    """Parses YAML or JSON text into a validated config; `env` overrides apply on top."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config is not valid YAML or JSON{where} in {source}", source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): must be a mapping with a 'voice' key in {source}", source)
    try:
        config = VoiceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source), source) from exc
    return _apply_env_overrides(config, os.environ if env is None else env)


def _apply_env_overrides(config: VoiceConfig, env: Any) -> VoiceConfig:
    worker = config.voice.realtime.worker
    for var, key in WORKER_ENV_OVERRIDES.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        data = worker.model_dump()
        data[key] = raw
        try:
            worker = type(worker).model_validate(data)
        except ValidationError as exc:
            source = f"env {var}"
            msgs = [
                f"voice.realtime.worker.{key}: {describe_error(e)} in {source}"
                for e in exc.errors()
            ]
            raise ConfigError("\n".join(msgs), source) from exc
    realtime = config.voice.realtime.model_copy(update={"worker": worker})
    voice = config.voice.model_copy(update={"realtime": realtime})
    return config.model_copy(update={"voice": voice})


def load_config(
    uri: str | None = None,
    *,
    s3_client: Any = None,
    ssm_client: Any = None,
    env: dict[str, str] | None = None,
) -> LoadedConfig:
    """Reads and validates the config at `uri` (default: `$VOICE_CONFIG_URI`, then the repo file)."""
    uri = uri or os.environ.get("VOICE_CONFIG_URI") or DEFAULT_URI
    text = _read_source(uri, s3_client=s3_client, ssm_client=ssm_client)
    config = parse_config(text, uri, env)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return LoadedConfig(config=config, source=uri, version=digest, loaded_at=time.time())


@dataclass(frozen=True)
class ConfigStatus:
    """What a process is serving: the last good config, and since when a newer one failed."""

    version: str
    source: str
    loaded_at: float
    # Set on the first failed refresh after a good load; cleared by the next good one.
    stale_since: float | None = None
    error: str | None = None


# Called after a refresh failed while a last good config keeps serving: each plane logs and counts.
FailureListener = Callable[[ConfigError, LoadedConfig], None]


def ttl_from_env(env: Any) -> float:
    """Seconds a loaded config is served before it is read again; 0 reads it on every use."""
    raw = env.get(TTL_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_TTL_SECONDS
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not 0.0 <= ttl <= MAX_TTL_SECONDS:  # NaN fails this too
        source = f"env {TTL_ENV}"
        raise ConfigError(
            f"{TTL_ENV}: must be a number of seconds from 0 to {MAX_TTL_SECONDS:g}, "
            f"e.g. 60 (got {raw!r}) in {source}",
            source,
        )
    return ttl


class ConfigCache:
    """Holds the last good config; a refresh every `ttl` seconds lets a changed config reach new
    sessions, and a refresh that fails keeps the last good one serving.

    Synchronous by default (the first `get()` after the TTL reloads); after
    `start_background_refresh()`, `get()` never reads the source, so an event loop never blocks.
    """

    def __init__(
        self,
        uri: str | None = None,
        ttl: float | None = None,
        *,
        on_failure: FailureListener | None = None,
    ) -> None:
        self._uri = uri
        self._ttl = ttl if ttl is not None else ttl_from_env(os.environ)
        self._on_failure = on_failure
        # One reload at a time; readers never wait on it once a config is loaded in background mode.
        self._refresh_lock = threading.RLock()
        self._loaded: LoadedConfig | None = None
        self._checked_at = 0.0
        self._stale_since: float | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def get(self) -> LoadedConfig:
        """The config to serve; raises ConfigError only if no good config was ever loaded."""
        loaded = self._loaded
        if loaded is not None and (self._refresher is not None or not self._due()):
            return loaded
        # With a good config in hand, a reload another thread is running is not waited for: a
        # request queued behind a stalled source would spend its own AWS budget after that wait.
        if not self._refresh_lock.acquire(blocking=loaded is None):
            return loaded  # type: ignore[return-value]
        try:
            if self._loaded is None or (self._refresher is None and self._due()):
                return self.refresh()
            return self._loaded
        finally:
            self._refresh_lock.release()

    def refresh(self) -> LoadedConfig:
        """Reloads now; a failure keeps the last good config, and raises only if there is none."""
        with self._refresh_lock:
            try:
                fresh = load_config(self._uri)
            except Exception as exc:
                error = _as_config_error(exc, self._uri)
                self._checked_at = time.time()
                last = self._loaded
                if last is None:
                    raise error from exc
                if self._stale_since is None:
                    self._stale_since = self._checked_at
                self._error = str(error)
                if self._on_failure is not None:
                    self._on_failure(error, last)
                return last
            self._loaded, self._checked_at = fresh, fresh.loaded_at
            self._stale_since = self._error = None
            return fresh

    def status(self) -> ConfigStatus | None:
        """None before the first good load."""
        loaded = self._loaded
        if loaded is None:
            return None
        return ConfigStatus(
            version=loaded.version,
            source=loaded.source,
            loaded_at=loaded.loaded_at,
            stale_since=self._stale_since,
            error=self._error,
        )

    def start_background_refresh(self, interval: float | None = None) -> LoadedConfig:
        """Loads now (raising if that fails), then refreshes every `interval` (default: the TTL)
        on a daemon thread."""
        loaded = self.get()
        with self._refresh_lock:
            if self._refresher is None:
                self._stop.clear()
                self._refresher = threading.Thread(
                    target=self._refresh_forever,
                    args=(max(self._ttl, MIN_REFRESH_INTERVAL) if interval is None else interval,),
                    name="config-refresh",
                    daemon=True,
                )
                self._refresher.start()
        return loaded

    def stop(self) -> None:
        self._stop.set()
        thread, self._refresher = self._refresher, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def clear(self) -> None:
        with self._refresh_lock:
            self._loaded = None
            self._stale_since = self._error = None

    def _due(self) -> bool:
        return time.time() - self._checked_at >= self._ttl

    def _refresh_forever(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.refresh()


def _as_config_error(exc: Exception, uri: str | None) -> ConfigError:
    if isinstance(exc, ConfigError):
        return exc
    source = uri or os.environ.get("VOICE_CONFIG_URI") or DEFAULT_URI
    return ConfigError(f"cannot load config from {source}: {exc!r}", source)


_default_cache: ConfigCache | None = None
_failure_listeners: list[FailureListener] = []


def _notify(error: ConfigError, last: LoadedConfig) -> None:
    for listener in list(_failure_listeners):
        listener(error, last)


def default_config_cache() -> ConfigCache:
    """The process-wide cache of `$VOICE_CONFIG_URI`."""
    global _default_cache
    if _default_cache is None:
        _default_cache = ConfigCache(on_failure=_notify)
    return _default_cache


def get_config() -> LoadedConfig:
    """The process-wide cached config from `$VOICE_CONFIG_URI`."""
    return default_config_cache().get()


def config_status() -> ConfigStatus | None:
    """What the process-wide cache serves, and whether a newer config failed to load.

    Once a config has loaded this refreshes it when due, so a health check sees a broken push
    even when no session was created since."""
    cache = default_config_cache()
    if cache.status() is not None:
        cache.get()
    return cache.status()


def on_config_failure(listener: FailureListener) -> None:
    """Registers `listener` (once) for failed refreshes of the process-wide cache."""
    if listener not in _failure_listeners:
        _failure_listeners.append(listener)


def reset_config_cache() -> None:
    global _default_cache
    if _default_cache is not None:
        _default_cache.stop()
    _default_cache = None


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-looking entry (and every header value) masked."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if lowered == "headers" and isinstance(item, dict):
                out[key] = {h: REDACTED for h in item}
            elif _SECRET_KEY.search(lowered) and item not in (None, ""):
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
