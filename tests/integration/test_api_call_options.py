"""Per-call instructions, variables, language and recording on POST /session; transcripts."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import jwt
import pytest

from functions.settings import DEV_LIVEKIT_SECRET as LK_SECRET
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import event_body, post_event
from voice.report import SessionReport, TranscriptEntry, Usage, recording_key, report_key

BASE = "/voice/realtime"


def create(cp: ControlPlane, **body: object):
    return invoke("POST", f"{BASE}/session", headers=cp.headers(), json=body)


def dispatch_of(created: dict) -> dict:
    claims = jwt.decode(created["token"], LK_SECRET, algorithms=["HS256"])
    return dict(json.loads(claims["roomConfig"]["agents"][0]["metadata"]))


def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **realtime: object) -> None:
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "voice.yaml", realtime)))
    reset_control_plane()


def test_per_call_instructions_variables_and_language_travel_in_the_dispatch(
    control_plane: ControlPlane,
) -> None:
    r = create(
        control_plane,
        agent_type="single_agent",
        instructions="The caller is {{name}}, asking about order {{order}}.",
        greeting="Hi {{name}}, calling about order {{order}}?",
        variables={"name": "Dana", "order": "A-17"},
        language="de",
    )
    assert r.status == 201, r.body
    dispatch = dispatch_of(r.body)
    assert dispatch["instructions"] == "The caller is {{name}}, asking about order {{order}}."
    assert dispatch["greeting"] == "Hi {{name}}, calling about order {{order}}?"
    assert dispatch["variables"] == {"name": "Dana", "order": "A-17"}
    assert dispatch["language"] == "de"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instructions": "x" * 4001}, "instructions"),
        ({"instructions": ""}, "instructions"),
        ({"greeting": "x" * 501}, "greeting"),
        ({"variables": {"bad name": "x"}}, "variables.bad name.[key]"),
        ({"variables": {"name": "x" * 501}}, "variables.name"),
        ({"variables": {"name": 7}}, "variables.name"),
        ({"variables": {f"v{i}": "x" for i in range(33)}}, "variables"),
        ({"language": "English please"}, "language"),
        ({"record": "yes"}, "record"),
    ],
)
def test_bad_per_call_options_are_refused_naming_the_field(
    control_plane: ControlPlane, body: dict, field: str
) -> None:
    r = create(control_plane, **body)
    assert r.status == 422, r.body
    assert r.body["error"] == "validation_error"
    assert r.body["message"].startswith(f"{field}:"), r.body


def test_overrides_are_refused_when_the_config_turns_them_off(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(tmp_path, monkeypatch, agent={"allow_overrides": False})
    r = create(control_plane, greeting="Hi!")
    assert r.status == 422
    assert r.body["message"].startswith("greeting: per-call overrides are turned off")
    assert create(control_plane, agent_type="single_agent").status == 201


def test_record_needs_recording_enabled_in_the_config(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = create(control_plane, record=True)
    assert r.status == 422
    assert r.body["message"].startswith("record: recording is turned off")
    use_config(tmp_path, monkeypatch, recording={"enabled": True})
    r = create(control_plane, record=True)
    assert r.status == 201
    assert dispatch_of(r.body)["record"] is True


def ended_session(cp: ControlPlane, **body: object) -> dict:
    r = create(cp, **body)
    assert r.status == 201, r.body
    post_event(event_body("participant_joined", r.body["room_name"], "caller-alice"))
    assert (
        invoke("DELETE", f"{BASE}/session/{r.body['session_id']}", headers=cp.headers()).status
        == 200
    )
    return r.body


def put_report(cp: ControlPlane, s: dict, recording: bool = False) -> None:
    s3 = boto3.client("s3")
    sid = s["session_id"]
    if recording:
        s3.put_object(Bucket=cp.reports_bucket, Key=recording_key(sid), Body=b"OggS...")
    report = SessionReport(
        session_id=sid,
        room=s["room_name"],
        job_id="AJ_1",
        agent_type="single_agent",
        started_at="2026-01-01T00:00:00+00:00",
        ended_at="2026-01-01T00:00:30+00:00",
        duration_s=30.0,
        transcript=[TranscriptEntry(role="user", text="Hi", at="2026-01-01T00:00:02+00:00")],
        turns=[],
        usage=Usage(tts_characters=12),
        recording_key=recording_key(sid) if recording else None,
    )
    s3.put_object(Bucket=cp.reports_bucket, Key=report_key(sid), Body=report.model_dump_json())


def test_transcript_is_not_found_before_the_end_and_the_owners_after(
    control_plane: ControlPlane,
) -> None:
    live = create(control_plane).body
    r = invoke(
        "GET", f"{BASE}/session/{live['session_id']}/transcript", headers=control_plane.headers()
    )
    assert r.status == 404
    assert "once the call has ended" in r.body["message"]

    s = ended_session(control_plane)
    path = f"{BASE}/session/{s['session_id']}/transcript"
    r = invoke("GET", path, headers=control_plane.headers())
    assert r.status == 404
    assert "no transcript yet" in r.body["message"]

    put_report(control_plane, s)
    r = invoke("GET", path, headers=control_plane.headers())
    assert r.status == 200, r.body
    assert r.body["transcript"] == [
        {"role": "user", "text": "Hi", "started_at": "2026-01-01T00:00:02+00:00"}
    ]
    assert r.body["usage"]["tts_characters"] == 12
    assert r.body["end_reason"] == "ended_by_api"
    assert invoke("GET", path, headers=control_plane.headers("bob")).status == 404


def test_a_recorded_call_has_a_short_lived_recording_url_once_ended(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(tmp_path, monkeypatch, recording={"enabled": True, "url_ttl_seconds": 600})
    s = ended_session(control_plane, record=True)
    put_report(control_plane, s, recording=True)
    shown = invoke("GET", f"{BASE}/session/{s['session_id']}", headers=control_plane.headers())
    assert shown.body["record"] is True
    url = urlparse(shown.body["recording_url"])
    assert url.path.endswith(recording_key(s["session_id"]))
    assert parse_qs(url.query)["X-Amz-Expires"] == ["600"]
    transcript = invoke(
        "GET", f"{BASE}/session/{s['session_id']}/transcript", headers=control_plane.headers()
    )
    assert transcript.body["recording_url"] is not None
