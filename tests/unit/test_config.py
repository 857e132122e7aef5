"""The unified config: defaults, sources (file, S3, SSM), env overrides, errors and redaction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from infra.local.paths import CONFIG_FILE, ROOT
from voice.config import ConfigCache, ConfigError, load_config, parse_config, redact


def test_repo_config_carries_the_reference_defaults() -> None:
    cfg = load_config(str(CONFIG_FILE), env={}).config.voice
    openai = cfg.providers.openai
    assert (openai.tts.voice, openai.tts.model, openai.tts.speed) == (
        "coral",
        "gpt-4o-mini-tts",
        1.0,
    )
    assert openai.stt.model == "gpt-4o-transcribe" and openai.stt.language is None
    assert openai.llm.model == "gpt-4o"
    assert cfg.voice_profiles["professional"].voice_id == "echo"
    assert cfg.voice_profiles["professional"].speed == 0.9
    rt = cfg.realtime
    assert rt.enabled is True
    assert (rt.livekit.room_empty_timeout, rt.livekit.max_participants) == (300, 2)
    assert (rt.vad.provider, rt.vad.threshold) == ("silero", 0.5)
    assert (rt.vad.min_speech_duration, rt.vad.max_speech_duration) == (0.1, 30.0)
    td = rt.turn_detection
    assert (td.enabled, td.min_endpointing_delay, td.max_endpointing_delay) == (True, 0.5, 3.0)
    assert (rt.interruptions.allow, rt.interruptions.min_duration) == (True, 0.5)
    assert rt.agent.type == "smart_router" and rt.agent.initial_greeting is True
    assert (rt.audio.enable_thinking_sound, rt.audio.thinking_volume) == (True, 0.3)
    limits = rt.limits
    assert (limits.max_sessions_per_user, limits.max_session_duration, limits.token_ttl_hours) == (
        3,
        3600,
        2,
    )
    w = rt.worker
    # No idle count: one warm process per slot (max_jobs), see worker.server.idle_processes.
    assert (w.num_idle_processes, w.port, w.job_memory_warn_mb, w.job_memory_limit_mb) == (
        None,
        0,
        700,
        0,
    )
    assert (w.load_threshold, w.agent_name) == (0.7, "openagents-voice")


def test_an_empty_config_gets_the_same_defaults_as_the_repo_file() -> None:
    repo = load_config(str(CONFIG_FILE), env={}).config
    empty = parse_config("voice: {}", "inline", env={})
    assert empty.voice.realtime.limits == repo.voice.realtime.limits
    assert empty.voice.realtime.worker == repo.voice.realtime.worker
    assert empty.voice.providers == repo.voice.providers


def _with(path: str, value: object) -> str:
    data = yaml.safe_load(CONFIG_FILE.read_text())
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "voice.realtime.limits.max_sessions_per_user",
            0,
            "voice.realtime.limits.max_sessions_per_user: must be >= 1 (got 0) in s3://cfg/voice.yaml",
        ),
        (
            "voice.realtime.agent.type",
            "psychic",
            "voice.realtime.agent.type: must be one of 'smart_router' or 'single_agent' (got 'psychic')",
        ),
        ("voice.realtime.vad.thresold", 0.4, "voice.realtime.vad.thresold: is not a known key"),
        (
            "voice.realtime.worker.load_threshold",
            "high",
            "voice.realtime.worker.load_threshold: input should be a valid number",
        ),
        (
            "voice.realtime.agent.voice_profile",
            "nobody",
            "voice.realtime.agent.voice_profile: 'nobody' is not a configured profile",
        ),
    ],
)
def test_a_bad_config_names_the_key_the_value_and_the_source(
    path: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_with(path, value), "s3://cfg/voice.yaml", env={})
    assert expected in str(err.value)
    assert "s3://cfg/voice.yaml" in str(err.value)


def test_endpointing_delays_must_be_ordered() -> None:
    text = _with("voice.realtime.turn_detection.max_endpointing_delay", 0.2)
    with pytest.raises(ConfigError, match="max_endpointing_delay must be >= min_endpointing_delay"):
        parse_config(text, "f.yaml", env={})


def test_yaml_syntax_errors_give_the_line() -> None:
    with pytest.raises(
        ConfigError, match=r"not valid YAML or JSON at line \d+, column \d+ in bad\.yaml"
    ):
        parse_config("voice:\n  realtime: [unclosed\n", "bad.yaml", env={})


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.yaml"):
        load_config(str(tmp_path / "nope.yaml"))


def test_env_overrides_tune_the_worker() -> None:
    env = {
        "OPENAGENTS_LIVEKIT_NUM_IDLE_PROCESSES": "3",
        "OPENAGENTS_LIVEKIT_JOB_MEMORY_WARN_MB": "900",
        "OPENAGENTS_LIVEKIT_JOB_MEMORY_LIMIT_MB": "1200",
        "OPENAGENTS_LIVEKIT_LOAD_THRESHOLD": "0.5",
        "OPENAGENTS_LIVEKIT_WORKER_PORT": "8081",
        "OPENAGENTS_LIVEKIT_AGENT_NAME": "support-bot",
    }
    w = load_config(str(CONFIG_FILE), env=env).config.voice.realtime.worker
    assert (w.num_idle_processes, w.job_memory_warn_mb, w.job_memory_limit_mb) == (3, 900, 1200)
    assert (w.load_threshold, w.port, w.agent_name) == (0.5, 8081, "support-bot")


def test_a_bad_env_override_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(str(CONFIG_FILE), env={"OPENAGENTS_LIVEKIT_LOAD_THRESHOLD": "2"})
    assert "voice.realtime.worker.load_threshold: must be <= 1.0 (got '2')" in str(err.value)
    assert "env OPENAGENTS_LIVEKIT_LOAD_THRESHOLD" in str(err.value)


def test_config_from_s3(aws: None) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(
        Bucket="cfg", Key="voice.yaml", Body=_with("voice.realtime.limits.max_sessions_per_user", 7)
    )
    loaded = load_config("s3://cfg/voice.yaml", env={})
    assert loaded.config.voice.realtime.limits.max_sessions_per_user == 7
    assert loaded.source == "s3://cfg/voice.yaml"


def test_s3_errors_name_the_uri(aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket="cfg")
    with pytest.raises(ConfigError, match=r"cannot read config from s3://cfg/missing\.yaml"):
        load_config("s3://cfg/missing.yaml", env={})
    with pytest.raises(ConfigError, match="s3://bucket/key"):
        load_config("s3://only-bucket", env={})


def test_config_from_an_ssm_securestring_in_json(aws: None) -> None:
    body = json.dumps({"voice": {"realtime": {"agent": {"type": "single_agent"}}}})
    boto3.client("ssm").put_parameter(Name="/voice/config", Value=body, Type="SecureString")
    loaded = load_config("ssm:/voice/config", env={})
    assert loaded.config.voice.realtime.agent.type == "single_agent"


def test_ssm_errors_name_the_parameter(aws: None) -> None:
    with pytest.raises(ConfigError, match="cannot read config from ssm:/voice/missing"):
        load_config("ssm:/voice/missing", env={})
    boto3.client("ssm").put_parameter(
        Name="/voice/bad", Value="voice: {realtime: {limits: {token_ttl_hours: 0}}}", Type="String"
    )
    with pytest.raises(
        ConfigError, match=r"token_ttl_hours: must be > 0.0 \(got 0\) in ssm:/voice/bad"
    ):
        load_config("ssm:/voice/bad", env={})


def test_a_changed_config_reaches_readers_after_the_ttl(aws: None) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(
        Bucket="cfg", Key="v.yaml", Body="voice: {realtime: {limits: {max_sessions_per_user: 2}}}"
    )
    cached = ConfigCache("s3://cfg/v.yaml", ttl=60)
    fresh = ConfigCache("s3://cfg/v.yaml", ttl=0)
    assert cached.get().config.voice.realtime.limits.max_sessions_per_user == 2
    first_version = fresh.get().version
    s3.put_object(
        Bucket="cfg", Key="v.yaml", Body="voice: {realtime: {limits: {max_sessions_per_user: 5}}}"
    )
    assert cached.get().config.voice.realtime.limits.max_sessions_per_user == 2
    assert fresh.get().config.voice.realtime.limits.max_sessions_per_user == 5
    assert fresh.get().version != first_version


def test_redact_masks_secrets_but_keeps_settings() -> None:
    data = {
        "api_key": "sk-123",
        "token_ttl_hours": 2,
        "nested": {"client_secret": "s", "headers": {"Authorization": "Bearer x"}, "url": "u"},
        "access_token": "t",
        "password": None,
    }
    assert redact(data) == {
        "api_key": "***",
        "token_ttl_hours": 2,
        "nested": {"client_secret": "***", "headers": {"Authorization": "***"}, "url": "u"},
        "access_token": "***",
        "password": None,
    }


def _validate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice.config", "validate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_validate_command_prints_the_effective_config() -> None:
    done = _validate_cli(str(CONFIG_FILE))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["voice"]["realtime"]["worker"]["agent_name"] == "openagents-voice"
    assert "ok:" in done.stderr


def test_validate_command_fails_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("voice: {realtime: {limits: {max_sessions_per_user: 0}}}")
    done = _validate_cli(str(bad))
    assert done.returncode == 1
    assert "voice.realtime.limits.max_sessions_per_user: must be >= 1 (got 0)" in done.stderr
    assert str(bad) in done.stderr


def test_agent_watchdog_checks_back_off_up_to_max_delay() -> None:
    from voice.config.schema import AgentWatchdogSettings

    defaults = AgentWatchdogSettings()
    assert [defaults.delay(n) for n in range(6)] == [3, 4, 4, 4, 4, 4]
    slow = AgentWatchdogSettings(first_check=2, backoff=2.0, max_delay=30)
    assert [slow.delay(n) for n in range(5)] == [2, 4, 8, 16, 30]
