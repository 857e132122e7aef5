"""Config of post-call analysis and of the name redactor: a bad schema or switch names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config_files import config_with
from voice.agents import resolve_spec
from voice.config import ConfigError
from voice.config.loader import load_config
from voice.config.schema import VoiceConfig


def error_for(tmp_path: Path, realtime: dict) -> str:
    path = config_with(tmp_path / "voice.yaml", realtime)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    return str(err.value)


def test_a_fields_schema_that_is_not_json_schema_names_the_key_inside_it(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"party_size": {"type": "count"}}}
    message = error_for(tmp_path, {"analysis": {"enabled": True, "fields_schema": schema}})
    assert "voice.realtime.analysis.fields_schema.properties.party_size.type" in message, message
    assert "is not valid JSON Schema" in message and str(tmp_path) in message


def test_the_fields_are_one_object(tmp_path: Path) -> None:
    message = error_for(tmp_path, {"analysis": {"fields_schema": {"type": "array"}}})
    assert "voice.realtime.analysis.fields_schema.type: must be 'object'" in message, message


def test_the_models_time_must_fit_the_analysis_function(tmp_path: Path) -> None:
    message = error_for(tmp_path, {"analysis": {"timeout_seconds": 120, "max_attempts": 3}})
    assert "voice.realtime.analysis.timeout_seconds" in message and "280" in message, message


def test_names_are_redacted_only_with_the_redactor_enabled(tmp_path: Path) -> None:
    message = error_for(tmp_path, {"privacy": {"redact": ["phone", "name"]}})
    assert "voice.realtime.privacy.redact" in message
    assert "name_redactor.enabled: true" in message
    ok = config_with(
        tmp_path / "ok.yaml",
        {"privacy": {"redact": ["name"], "name_redactor": {"enabled": True, "model": "m"}}},
    )
    assert load_config(str(ok)).config.realtime.privacy.name_redactor.model == "m"


def test_a_version_carries_its_own_analysis_or_follows_the_config_files() -> None:
    base = VoiceConfig.model_validate({"voice": {"realtime": {"analysis": {"summary": True}}}})
    plain = resolve_spec({"agent": {"instructions": "Be brief."}}, base)
    assert plain.analysis is None
    assert plain.applied_to(base).realtime.analysis == base.realtime.analysis

    own = resolve_spec(
        {"analysis": {"enabled": True, "success_criteria": "A table was booked."}}, base
    )
    assert own.analysis is not None and own.analysis.success_criteria == "A table was booked."
    assert own.applied_to(base).realtime.analysis.enabled


def test_a_versions_bad_fields_schema_names_the_section() -> None:
    from voice.agents import SpecError

    with pytest.raises(SpecError) as err:
        resolve_spec(
            {"analysis": {"fields_schema": {"type": "object", "required": 3}}}, VoiceConfig()
        )
    assert any(e.startswith("config.analysis") for e in err.value.errors), err.value.errors
