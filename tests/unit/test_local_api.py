"""`make api` says what admission will do with the config it serves, the user's own included."""

from __future__ import annotations

import pytest

from infra.local.api import admission_note, config_without_admission
from tests.support.config_files import config_with
from voice.config.loader import reset_config_cache


@pytest.fixture(autouse=True)
def _fresh_config():
    reset_config_cache()
    yield
    reset_config_cache()


def test_the_default_config_of_make_api_has_admission_off(monkeypatch):
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_without_admission()))
    assert admission_note() == "admission off"


def test_a_given_config_with_admission_on_is_reported_with_what_it_will_do(monkeypatch, tmp_path):
    path = config_with(tmp_path / "voice.yaml", {"admission": {"enabled": True}})
    monkeypatch.setenv("VOICE_CONFIG_URI", str(path))
    note = admission_note()
    assert note.startswith("admission ON")
    assert "503 fleet_at_capacity" in note
