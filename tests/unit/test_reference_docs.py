"""docs/reference/ is generated from the code: these fail when the checked-in copy is stale."""

from __future__ import annotations

from infra.build import reference


def test_checked_in_references_match_the_code():
    diffs = reference.stale()
    assert diffs == [], "docs/reference is stale: run `make docs`\n" + "\n".join(diffs)


def test_every_config_key_has_exactly_one_description():
    keys = {k.path for k in reference.config_keys()}
    texts = reference.key_texts()
    assert sorted(keys - set(texts)) == []
    assert sorted(set(texts) - keys) == []
    assert all(isinstance(t, str) and t.strip() for t in texts.values())


def test_the_config_reference_shows_types_defaults_and_bounds():
    text = reference.config_reference()
    row = next(line for line in text.splitlines() if "`voice.realtime.worker.max_jobs`" in line)
    assert "| int | `4` | ≥ 1, ≤ 256 |" in row
    mode = next(
        line for line in text.splitlines() if "`voice.realtime.turn_detection.mode`" in line
    )
    assert "one of `vad`, `stt`, `model`" in mode


def test_the_api_reference_covers_every_route_of_the_app():
    from functions.api.app import create_app

    text = reference.api_reference()
    for path, methods in create_app().openapi()["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in text
