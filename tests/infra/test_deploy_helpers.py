"""The deploy helpers: samconfig edits and config pushes, against moto."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.deploy.config_push import push
from infra.deploy.samconfig import parse_overrides, read_settings, set_parameter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "samconfig.example.toml"
CONFIG = ROOT / "config" / "voice_config.yaml"


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    shutil.copy(EXAMPLE, path)
    return path


def test_example_samconfig_names_every_required_parameter():
    from infra.template import load_template

    required = {k for k, v in load_template()["Parameters"].items() if "Default" not in v}
    settings = read_settings(EXAMPLE)
    assert required <= set(settings.parameters)
    assert settings.stack_name == "voice-agents"


def test_set_parameter_changes_one_override_and_keeps_the_others(samconfig: Path):
    before = read_settings(samconfig).parameters
    set_parameter(samconfig, "WorkerImageTag", "abc123def456")
    after = read_settings(samconfig).parameters
    assert after == {**before, "WorkerImageTag": "abc123def456"}
    assert "confirm_changeset = true" in samconfig.read_text()


def test_overrides_with_spaces_round_trip():
    assert parse_overrides('A="x y" B=z') == {"A": "x y", "B": "z"}


def test_push_writes_the_yaml_to_the_stack_bucket():
    text = CONFIG.read_text()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cfg")
        s3.put_bucket_versioning(Bucket="cfg", VersioningConfiguration={"Status": "Enabled"})
        version = push(text, "s3://cfg/config/voice_config.yaml", s3=s3, ssm=None)
        body = s3.get_object(Bucket="cfg", Key="config/voice_config.yaml")["Body"].read()
    assert body.decode() == text
    assert version != "unversioned"


def test_push_overwrites_the_stack_parameter():
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/stack/voice-config", Value="# placeholder", Type="String")
        push("voice: {}\n", "ssm:/stack/voice-config", s3=None, ssm=ssm)
        value = ssm.get_parameter(Name="/stack/voice-config")["Parameter"]["Value"]
    assert value == "voice: {}\n"


def test_push_refuses_an_unknown_uri():
    with pytest.raises(SystemExit):
        push("x", "file:///tmp/x.yaml", s3=None, ssm=None)


def test_a_push_that_renames_the_agent_is_refused_saying_what_a_rename_needs():
    from infra.deploy.config_push import deployed, rename_refusal

    text = CONFIG.read_text()
    renamed = text.replace('agent_name: "openagents-voice"', 'agent_name: "voice-v2"')
    assert renamed != text
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cfg")
        uri = "s3://cfg/voice_config.yaml"
        assert deployed(uri, s3=s3, ssm=None) is None
        push(text, uri, s3=s3, ssm=None)
        current = deployed(uri, s3=s3, ssm=None)
    assert rename_refusal(None, renamed, "new.yaml") is None  # a first push renames nothing
    assert rename_refusal(current, text, "new.yaml") is None
    refusal = rename_refusal(current, renamed, "new.yaml")
    assert refusal is not None
    assert "'openagents-voice' -> 'voice-v2'" in refusal
    assert "OPENAGENTS_LIVEKIT_AGENT_NAME=voice-v2" in refusal
    assert "--rename-agent" in refusal
