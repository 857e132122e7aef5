"""The last good config: a broken or unreadable refresh never replaces it, and is reported."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from infra.local.paths import CONFIG_FILE
from voice.config import ConfigCache, ConfigError, LoadedConfig
from worker.config_watch import ConfigFailureReport
from worker.emf import EmfEmitter

GOOD = "voice: {realtime: {limits: {max_sessions_per_user: 2}}}"
BETTER = "voice: {realtime: {limits: {max_sessions_per_user: 5}}}"
BROKEN = "voice: {realtime: {limits: {max_sessions_per_user: -1}}}"


class Failures:
    def __init__(self) -> None:
        self.seen: list[tuple[ConfigError, LoadedConfig]] = []

    def __call__(self, error: ConfigError, last: LoadedConfig) -> None:
        self.seen.append((error, last))


@pytest.fixture
def bucket(aws: None) -> str:
    boto3.client("s3").create_bucket(Bucket="cfg")
    return "cfg"


def put(bucket: str, body: str | bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key="v.yaml", Body=body)


def limit(loaded: LoadedConfig) -> int:
    return loaded.config.voice.realtime.limits.max_sessions_per_user


def test_a_broken_config_after_a_good_one_leaves_the_good_one_serving(bucket: str) -> None:
    failures = Failures()
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=0, on_failure=failures)
    put(bucket, GOOD)
    good = cache.get()
    put(bucket, BROKEN)
    assert limit(cache.get()) == 2
    assert cache.get().version == good.version
    error, last = failures.seen[0]
    assert "voice.realtime.limits.max_sessions_per_user" in str(error)
    assert error.source == f"s3://{bucket}/v.yaml" and last.version == good.version
    status = cache.status()
    assert status is not None and status.version == good.version
    assert status.stale_since is not None and "max_sessions_per_user" in (status.error or "")


def test_stale_since_stays_at_the_first_failure_and_a_good_config_clears_it(bucket: str) -> None:
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=0)
    put(bucket, GOOD)
    cache.get()
    put(bucket, BROKEN)
    cache.get()
    first = cache.status().stale_since  # type: ignore[union-attr]
    cache.get()
    assert cache.status().stale_since == first  # type: ignore[union-attr]
    put(bucket, BETTER)
    assert limit(cache.get()) == 5
    status = cache.status()
    assert status is not None and status.stale_since is None and status.error is None


def test_an_unreadable_source_after_a_good_load_leaves_the_good_one_serving(bucket: str) -> None:
    failures = Failures()
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=0, on_failure=failures)
    put(bucket, GOOD)
    cache.get()
    boto3.client("s3").delete_object(Bucket=bucket, Key="v.yaml")
    assert limit(cache.get()) == 2
    assert "cannot read config from s3://cfg/v.yaml" in str(failures.seen[0][0])


def test_a_config_that_is_not_utf8_is_a_config_error_naming_the_source(bucket: str) -> None:
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=0)
    put(bucket, b"voice: \xff\xfe")
    with pytest.raises(ConfigError, match=r"config in s3://cfg/v\.yaml is not UTF-8"):
        cache.get()


def test_a_process_that_never_loaded_a_good_config_fails_loudly(bucket: str) -> None:
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=0)
    put(bucket, BROKEN)
    with pytest.raises(ConfigError, match="max_sessions_per_user"):
        cache.get()
    assert cache.status() is None


def test_a_failed_refresh_is_retried_only_after_the_ttl(bucket: str) -> None:
    failures = Failures()
    cache = ConfigCache(f"s3://{bucket}/v.yaml", ttl=3600, on_failure=failures)
    put(bucket, GOOD)
    cache.get()
    put(bucket, BROKEN)
    cache.refresh()
    cache.get()
    cache.get()
    assert len(failures.seen) == 1


def test_background_refresh_picks_up_a_change_and_get_never_reads(tmp_path: Path) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(GOOD)
    cache = ConfigCache(str(path), ttl=0.05)
    try:
        assert limit(cache.start_background_refresh()) == 2
        path.write_text(BETTER)
        deadline = time.monotonic() + 30
        while limit(cache.get()) != 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert limit(cache.get()) == 5
    finally:
        cache.stop()


def test_get_in_background_mode_serves_without_touching_the_source(tmp_path: Path) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(GOOD)
    # ttl=0: in synchronous mode every get() would reload (and find the file gone).
    cache = ConfigCache(str(path), ttl=0)
    try:
        cache.start_background_refresh(interval=3600)
        path.unlink()
        assert limit(cache.get()) == 2
        assert cache.status().stale_since is None  # type: ignore[union-attr]
    finally:
        cache.stop()


def in_refresh(thread: threading.Thread) -> bool:
    """True once `thread` is inside ConfigCache.refresh (which holds the reload lock)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "refresh":
            return True
        frame = frame.f_back
    return False


def test_a_reader_with_a_good_config_does_not_wait_for_a_slow_refresh(tmp_path: Path) -> None:
    # A request must not spend its AWS budget queued behind another request's stalled reload.
    path = tmp_path / "voice.yaml"
    path.write_text(GOOD)
    cache = ConfigCache(str(path), ttl=0)
    assert limit(cache.get()) == 2
    path.unlink()
    os.mkfifo(path)  # opening it for reading blocks until a writer comes: a stalled source
    reloaded: list[LoadedConfig] = []
    slow = threading.Thread(target=lambda: reloaded.append(cache.get()), daemon=True)
    slow.start()
    deadline = time.monotonic() + 10
    while not in_refresh(slow) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert in_refresh(slow), "the slow reload never started"
    served: list[LoadedConfig] = []
    reader = threading.Thread(target=lambda: served.append(cache.get()), daemon=True)
    reader.start()
    reader.join(timeout=5)
    answered_at_once = not reader.is_alive()
    with open(path, "w") as writer:  # unblocks the reload (and a reader stuck behind it)
        writer.write(BETTER)
    slow.join(timeout=10)
    reader.join(timeout=10)
    assert answered_at_once, "a reader holding a good config waited for another thread's reload"
    assert [limit(r) for r in served] == [2]  # the last good config
    assert [limit(r) for r in reloaded] == [5]


def test_the_worker_report_emits_config_load_failed_as_emf() -> None:
    out = io.StringIO()
    report = ConfigFailureReport(EmfEmitter("VoiceAgents", stream=out))
    cache = ConfigCache(str(CONFIG_FILE), ttl=0)
    report(ConfigError("voice.realtime.x: is not a known key in s3://b/k", "s3://b/k"), cache.get())
    record = json.loads(out.getvalue())
    metrics = record["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Metrics"] == [{"Name": "ConfigLoadFailed", "Unit": "Count"}]
    assert record["ConfigLoadFailed"] == 1 and record["source"] == "s3://b/k"


def test_the_control_plane_report_emits_config_load_failed_as_emf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from functions.config_watch import report_config_failure

    loaded = ConfigCache(str(CONFIG_FILE), ttl=0).get()
    report_config_failure(ConfigError("voice.x: is not a known key in ssm:/c", "ssm:/c"), loaded)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    emf = [line for line in lines if "ConfigLoadFailed" in line]
    assert emf, lines
    assert emf[0]["ConfigLoadFailed"] == [1.0] and emf[0]["service"] == "control-plane"
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
