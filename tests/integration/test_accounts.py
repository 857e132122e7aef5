"""Accounts and end users: their limits in the create's transaction, and GET /usage, via Mangum."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from functions.keys import main as keys_main
from functions.wiring import get_container
from infra.local.stack import free_port
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import Reply, invoke
from tests.support.livekit_events import event_body, post_event
from tests.support.servers import ServerThread

BASE = "/voice/realtime"


def key_in(account: str | None, user: str) -> dict[str, str]:
    key, _ = get_container().keys.create(user, account_id=account)
    return {"x-api-key": key, "content-type": "application/json"}


def create(headers: dict[str, str], **body: Any) -> Reply:
    return invoke("POST", f"{BASE}/session", headers=headers, json=body)


def usage(headers: dict[str, str], query: str = "") -> Reply:
    return invoke("GET", f"{BASE}/usage", headers=headers, query=query)


def account_limit(cp: ControlPlane, *args: str) -> int:
    return keys_main(["--table", cp.table, "account-limit", *args])


def test_a_key_without_an_account_is_its_own_account_as_before(
    control_plane: ControlPlane,
) -> None:
    h = control_plane.headers()
    for _ in range(3):
        assert create(h).status == 201
    refused = create(h)
    assert refused.status == 429 and refused.body["error"] == "session_limit_reached"
    assert "max_sessions_per_user = 3" in refused.body["message"]
    shown = usage(h).body
    assert (shown["account_id"], shown["live_sessions"], shown["limit"]) == ("alice", 3, 100)
    assert shown["end_user_limit"] == 3 and shown["days"] == [] and shown["rows"] == []


def test_each_end_user_has_the_per_user_limit_and_the_key_keeps_its_own(
    control_plane: ControlPlane,
) -> None:
    h = key_in("acme", "acme-backend")
    for _ in range(3):
        assert create(h, end_user_id="e1").status == 201
    refused = create(h, end_user_id="e1")
    assert refused.status == 429 and refused.body["error"] == "end_user_limit_reached"
    assert "end_user_id" in refused.body["message"]
    # Another end user, and the key itself (no end user), are not held back by e1.
    assert create(h, end_user_id="e2").status == 201
    for _ in range(3):
        assert create(h).status == 201
    assert create(h).body["error"] == "session_limit_reached"
    # The same end user id in another account is another person.
    assert create(key_in("globex", "globex-backend"), end_user_id="e1").status == 201
    assert usage(h).body["live_sessions"] == 7


def test_the_account_limit_spans_its_keys_and_end_users_and_frees_on_end(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    backend, web = key_in("acme", "acme-backend"), key_in("acme", "acme-web")
    assert account_limit(control_plane, "acme", "4") == 0
    ids = [create(backend, end_user_id=f"e{i}").body["session_id"] for i in range(2)]
    ids += [create(web, end_user_id=f"w{i}").body["session_id"] for i in range(2)]
    for refused in (create(backend, end_user_id="e9"), create(web)):
        assert refused.status == 429 and refused.body["error"] == "account_limit_reached"
        assert "4 live sessions" in refused.body["message"]
    shown = usage(web).body
    assert (shown["account_id"], shown["live_sessions"], shown["limit"]) == ("acme", 4, 4)
    # Another account is untouched by acme's.
    assert create(control_plane.headers()).status == 201

    assert invoke("DELETE", f"{BASE}/session/{ids[0]}", headers=backend).status == 200
    assert create(web, end_user_id="w9").status == 201
    assert create(web, end_user_id="w10").body["error"] == "account_limit_reached"
    # Back to the config's default (100).
    assert account_limit(control_plane, "acme", "--default") == 0
    assert create(web, end_user_id="w10").status == 201
    assert usage(web).body["limit"] == 100
    assert account_limit(control_plane, "no/such", "3") == 2
    assert "account id" in capsys.readouterr().err


def test_twenty_racing_creates_across_end_users_yield_exactly_the_account_limit(
    control_plane: ControlPlane, serialized_dynamodb: None
) -> None:
    from functions.api.app import create_app

    h = key_in("acme", "acme-backend")
    assert account_limit(control_plane, "acme", "5") == 0
    with ServerThread(create_app(), free_port()) as server:

        def race(n: int) -> httpx.Response:
            return httpx.post(
                f"{server.url}{BASE}/session",
                headers=h,
                json={"end_user_id": f"person-{n}"},
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(pool.map(race, range(20)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [201] * 5 + [429] * 15, [r.json() for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code == 429} == {"account_limit_reached"}
    assert usage(h).body["live_sessions"] == 5


def agent_with_two_versions(headers: dict[str, str]) -> str:
    made = invoke("POST", f"{BASE}/agents", headers=headers, json={"name": "front desk"})
    agent_id = made.body["agent_id"]
    for _ in range(2):
        published = invoke(
            "POST", f"{BASE}/agents/{agent_id}/versions", headers=headers, json={"config": {}}
        )
        assert published.status == 201, published.body
    return agent_id


def _call(headers: dict[str, str], user: str, minutes: float, **body: Any) -> None:
    """A call the caller joined `minutes` ago and hangs up now (LiveKit's signed webhooks)."""
    created = create(headers, **body)
    assert created.status == 201, created.body
    room = created.body["room_name"]
    joined = time.time() - minutes * 60
    assert (
        post_event(event_body("participant_joined", room, f"caller-{user}", at=joined)).status
        == 200
    )
    assert post_event(event_body("participant_left", room, f"caller-{user}")).status == 200


def test_usage_has_call_minutes_per_day_and_agent_version(control_plane: ControlPlane) -> None:
    h = key_in("acme", "acme-backend")
    agent_id = agent_with_two_versions(h)
    _call(h, "acme-backend", 2.0)
    _call(h, "acme-backend", 1.5, end_user_id="e1")
    _call(h, "acme-backend", 3.0, agent_id=agent_id, agent_version=2)
    create(h)  # never joined: no minutes
    today = datetime.now(UTC).date().isoformat()
    shown = usage(h).body
    assert shown["live_sessions"] == 1
    assert [d["day"] for d in shown["days"]] == [today]
    assert shown["days"][0]["calls"] == 3
    assert shown["days"][0]["minutes"] == pytest.approx(6.5, abs=0.2)
    by_version = {(v["agent_id"], v["agent_version"]): v for v in shown["versions"]}
    assert by_version[(None, None)]["calls"] == 2
    assert by_version[(None, None)]["minutes"] == pytest.approx(3.5, abs=0.2)
    assert by_version[(agent_id, 2)]["minutes"] == pytest.approx(3.0, abs=0.2)
    assert len(shown["rows"]) == 2 and {r["day"] for r in shown["rows"]} == {today}
    # Another account sees none of it; a range before today has none of it.
    assert usage(control_plane.headers()).body["days"] == []
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert usage(h, f"from=2026-01-01&to={yesterday}").body["days"] == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=2026-12-05&to=2026-12-01", "from:"),
        ("from=2024-01-01&to=2026-12-01", "366 days"),
        ("from=yesterday", "from"),
        ("from=2026-02-31", "not a day"),
    ],
)
def test_a_bad_usage_range_is_422_saying_what_to_fix(
    control_plane: ControlPlane, query: str, says: str
) -> None:
    r = usage(control_plane.headers(), query)
    assert r.status == 422 and r.body["error"] == "validation_error"
    assert says in r.body["message"]


def test_usage_needs_a_key(control_plane: ControlPlane) -> None:
    assert invoke("GET", f"{BASE}/usage").status == 401


def test_the_audit_checks_and_repairs_account_and_end_user_counters(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.audit import main as audit_main

    h = key_in("acme", "acme-backend")
    create(h, end_user_id="e1")
    create(h)
    assert audit_main([]) == 1  # LiveKit is unreachable: no verdict on rooms, counters checked
    assert "counter_mismatch" not in capsys.readouterr().out
    stale = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    control_plane.dynamodb.update_item(
        TableName=control_plane.table,
        Key={"pk": {"S": "ACCOUNT#acme"}, "sk": {"S": "LIMIT"}},
        UpdateExpression="SET live = :five, updated_at = :then",
        ExpressionAttributeValues={":five": {"N": "5"}, ":then": {"S": stale}},
    )
    assert audit_main(["--repair"]) == 1
    out = capsys.readouterr().out
    assert "repaired counter_mismatch account acme: counter says 5 live" in out
    assert "set to 2" in out
    assert usage(h).body["live_sessions"] == 2
