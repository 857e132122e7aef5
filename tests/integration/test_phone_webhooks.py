"""Phone calls in the control plane: SIP participant webhooks and POST /call, through Mangum."""

from __future__ import annotations

from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import post_event, sip_event_body
from voice.metadata import END_REASON_ATTRIBUTE, VOICEMAIL
from voice.rooms import session_id_from_room

BASE = "/voice/realtime"
ROOM = "phone-_+15550123_Xy12Ab"


def phone(number: str = "+15550100", caller: str = "+15550123") -> dict[str, str]:
    return {"sip.trunkPhoneNumber": number, "sip.phoneNumber": caller, "sip.callStatus": "active"}


def dev_headers() -> dict[str, str]:
    """The repo's config routes +15550100 to the local dev user."""
    from functions.wiring import get_container

    key, _ = get_container().keys.create("dev")
    return {"x-api-key": key, "content-type": "application/json"}


def test_a_call_to_a_configured_number_is_an_active_session_of_its_owner_once(
    control_plane: ControlPlane,
) -> None:
    headers = dev_headers()
    joined = sip_event_body("participant_joined", ROOM, phone())
    first = post_event(joined)
    session_id = session_id_from_room(ROOM)
    assert first.body == {"session_id": session_id, "action": "activated"}
    assert post_event(joined).body == {"session_id": session_id, "action": "unchanged"}
    got = invoke("GET", f"{BASE}/session/{session_id}", headers=headers).body
    assert got["status"] == "active"
    assert got["phone"] == {"direction": "inbound", "number": "+15550100", "remote": "+15550123"}
    listed = invoke("GET", f"{BASE}/sessions", headers=headers).body["sessions"]
    assert [s["session_id"] for s in listed] == [session_id]


def test_the_caller_hanging_up_ends_the_session(control_plane: ControlPlane) -> None:
    headers = dev_headers()
    post_event(sip_event_body("participant_joined", ROOM, phone()))
    left = post_event(
        sip_event_body("participant_left", ROOM, phone(), disconnect_reason="CLIENT_INITIATED")
    )
    assert left.body["action"] == "ended"
    got = invoke("GET", f"{BASE}/session/{session_id_from_room(ROOM)}", headers=headers).body
    assert (got["status"], got["end_reason"]) == ("ended", "caller_left")


def test_a_phone_the_agent_marked_as_voicemail_ends_the_session_voicemail(
    control_plane: ControlPlane,
) -> None:
    headers = dev_headers()
    post_event(sip_event_body("participant_joined", ROOM, phone()))
    marked = phone() | {END_REASON_ATTRIBUTE: VOICEMAIL}
    post_event(
        sip_event_body("participant_left", ROOM, marked, disconnect_reason="CLIENT_INITIATED")
    )
    got = invoke("GET", f"{BASE}/session/{session_id_from_room(ROOM)}", headers=headers).body
    assert (got["status"], got["end_reason"]) == ("ended", "voicemail")


def test_a_call_to_a_number_no_longer_in_the_config_gets_no_session(
    control_plane: ControlPlane,
) -> None:
    r = post_event(sip_event_body("participant_joined", ROOM, phone(number="+15550999")))
    assert r.body == {"session_id": None, "action": "refused: unknown number"}
    assert invoke("GET", f"{BASE}/sessions", headers=dev_headers()).body["sessions"] == []


def test_calling_a_number_without_an_outbound_trunk_in_the_config_says_what_to_set(
    control_plane: ControlPlane,
) -> None:
    r = invoke("POST", f"{BASE}/call", headers=control_plane.headers(), json={"to": "+15550123"})
    assert r.status == 503
    assert r.body["error"] == "config_invalid"
    assert "telephony.outbound" in r.body["message"]


def test_a_call_livekit_cannot_place_is_a_502_and_a_failed_session_that_frees_its_slot(
    control_plane: ControlPlane,
) -> None:
    headers = control_plane.headers()
    r = invoke("POST", f"{BASE}/call", headers=headers, json={"to": "sip:bob@127.0.0.1:5999"})
    assert r.status == 502
    assert r.body["error"] == "call_not_placed"
    (failed,) = invoke("GET", f"{BASE}/sessions", headers=headers).body["sessions"]
    assert (failed["status"], failed["end_reason"]) == ("failed", "sip_error")
    assert failed["phone"]["remote"] == "sip:bob@127.0.0.1:5999"
    # The slot came back: the user can still open as many sessions as the limit allows.
    for _ in range(3):
        assert invoke("POST", f"{BASE}/session", headers=headers, json={}).status == 201


def test_a_call_to_something_that_is_not_a_number_is_a_422(control_plane: ControlPlane) -> None:
    r = invoke("POST", f"{BASE}/call", headers=control_plane.headers(), json={"to": "mum"})
    assert r.status == 422
    assert "E.164" in r.body["message"]


def test_a_retried_call_with_the_same_idempotency_key_returns_the_same_session_and_dials_once(
    control_plane: ControlPlane,
) -> None:
    headers = control_plane.headers() | {"idempotency-key": "call-7f3a"}
    body = {"to": "sip:bob@127.0.0.1:5999"}
    # LiveKit is unreachable here, so the first attempt is placed and fails (502).
    first = invoke("POST", f"{BASE}/call", headers=headers, json=body)
    assert first.status == 502
    (failed,) = invoke("GET", f"{BASE}/sessions", headers=headers).body["sessions"]
    retry = invoke("POST", f"{BASE}/call", headers=headers, json=body)
    assert retry.status == 201
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.body["session_id"] == failed["session_id"]
    assert retry.body["status"] == "failed"
    # Still one session: the retry dialled no one.
    assert len(invoke("GET", f"{BASE}/sessions", headers=headers).body["sessions"]) == 1
    other = invoke("POST", f"{BASE}/call", headers=headers, json={"to": "sip:eve@127.0.0.1:5999"})
    assert other.status == 422
    assert other.body["message"].startswith("Idempotency-Key:")


def test_one_idempotency_key_cannot_replay_a_web_session_as_a_phone_call(
    control_plane: ControlPlane,
) -> None:
    headers = control_plane.headers() | {"idempotency-key": "shared-key"}
    assert invoke("POST", f"{BASE}/session", headers=headers, json={}).status == 201
    r = invoke("POST", f"{BASE}/call", headers=headers, json={"to": "sip:bob@127.0.0.1:5999"})
    assert r.status == 422
    assert r.body["error"] == "idempotency_key_reused"
