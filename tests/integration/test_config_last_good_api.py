"""Through the Mangum handler: a broken config pushed to S3 never takes the API down."""

from __future__ import annotations

import boto3
import pytest

from infra.local.paths import CONFIG_FILE
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke

BASE = "/voice/realtime"
BUCKET = "voice-config-test"
URI = f"s3://{BUCKET}/config/voice_config.yaml"


@pytest.fixture
def config_in_s3(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> ControlPlane:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="config/voice_config.yaml", Body=CONFIG_FILE.read_bytes())
    monkeypatch.setenv("VOICE_CONFIG_URI", URI)
    # Every request is past the TTL: each one tries the object in S3 again.
    monkeypatch.setenv("VOICE_CONFIG_TTL_SECONDS", "0")
    reset_control_plane()
    return control_plane


def version_of(cp: ControlPlane, created: dict[str, str]) -> str:
    r = invoke("GET", f"{BASE}/session/{created['session_id']}", headers=cp.headers())
    return str(r.body["config_version"])


def push(body: str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="config/voice_config.yaml", Body=body)


def test_a_broken_config_in_s3_leaves_create_working_on_the_last_good_one(
    config_in_s3: ControlPlane,
) -> None:
    first = invoke("POST", f"{BASE}/session", headers=config_in_s3.headers(), json={})
    assert first.status == 201, first.body
    health = invoke("GET", f"{BASE}/health").body["config"]
    assert health["source"] == URI and health["stale_since"] is None

    push("voice: {realtime: {limits: {max_sessions_per_user: zero}}}")
    second = invoke("POST", f"{BASE}/session", headers=config_in_s3.headers(), json={})
    assert second.status == 201, second.body
    assert version_of(config_in_s3, second.body) == version_of(config_in_s3, first.body)

    stale = invoke("GET", f"{BASE}/health").body["config"]
    assert stale["version"] == health["version"] and stale["stale_since"] is not None


def test_a_fixed_config_clears_stale_since_in_health(config_in_s3: ControlPlane) -> None:
    assert invoke("GET", f"{BASE}/config", headers=config_in_s3.headers()).status == 200
    push("voice: [not, a, mapping]")
    assert invoke("GET", f"{BASE}/health").body["config"]["stale_since"] is not None
    push(CONFIG_FILE.read_text().replace("max_sessions_per_user: 3", "max_sessions_per_user: 4"))
    body = invoke("GET", f"{BASE}/health").body["config"]
    assert body["stale_since"] is None


def test_a_process_whose_first_config_is_broken_answers_503(
    config_in_s3: ControlPlane,
) -> None:
    push("voice: {realtime: {limits: {max_sessions_per_user: zero}}}")
    r = invoke("POST", f"{BASE}/session", headers=config_in_s3.headers(), json={})
    assert r.status == 503 and r.body["error"]
    assert "max_sessions_per_user" in r.body["message"]
    assert invoke("GET", f"{BASE}/health").body["config"] is None
