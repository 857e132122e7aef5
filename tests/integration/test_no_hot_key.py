"""No partition-key value whose writes grow with total traffic: counted on moto, through the API.

Each run gives every user one call from create to hang-up (the API, then signed LiveKit webhooks;
LiveKit is unreachable, so the room's deletion waits in the cleanup backlog too). A user's own
keys take a share of all writes that falls as users are added; a key every session writes (a hot
key) keeps its share however many there are. So every key value written in both a small and a
large run must take a smaller share of the writes in the large one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from functions.aio import run_sync
from functions.background.reaper import handler
from functions.wiring import get_container
from tests.conftest import FLEET_SLOTS
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.fleet import AGENT_NAME, report_capacity
from tests.support.key_writes import KeyWrites, count_key_writes, session_lifecycle
from tests.support.lambda_events import LambdaContext, invoke
from voice.table import Heartbeat

BASE = "/voice/realtime"
# Eight times the users: a key value shared by chance (one of 16 shards) would need half the
# large run's sessions to keep its share, which never happens (p < 1e-4).
SMALL, LARGE = 2, 16

Run = Callable[[str, int], dict[str, float]]


@pytest.fixture
def run_users(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """`run(prefix, n)`: n new users, one call each; the share of writes of each key value."""
    # The counter reads each written item twice: give a request the longest budget.
    monkeypatch.setenv("AWS_BUDGET_SECONDS", "10")
    boto3.setup_default_session()
    # The control plane's client is built after this, from the default session: it carries the hook.
    writes: KeyWrites = count_key_writes(
        boto3.DEFAULT_SESSION.events,
        boto3.session.Session().client("dynamodb"),
        control_plane.table,
    )
    reset_control_plane()

    def run(prefix: str, users: int) -> dict[str, float]:
        names = [f"{prefix}{i}" for i in range(users)]
        writes.active = False
        keys = {name: get_container().keys.create(name)[0] for name in names}
        writes.counts.clear()
        writes.active = True
        for name in names:
            session_lifecycle({"x-api-key": keys[name]}, name, {})
        writes.active = False
        return writes.shares()

    yield run
    boto3.DEFAULT_SESSION = None
    reset_control_plane()


def hot_keys(small: dict[str, float], large: dict[str, float]) -> list[str]:
    """Key values written in both runs whose share of the writes did not fall."""
    return sorted(k for k in set(small) & set(large) if large[k] >= small[k])


def test_no_key_value_takes_a_constant_share_of_writes_as_users_grow(run_users: Run) -> None:
    small = run_users("few-", SMALL)
    large = run_users("many-", LARGE)
    shared = set(small) & set(large)
    # The state index is shared between users by design: its shards are what the runs share.
    assert shared and all(k.startswith("by-state|") for k in shared), sorted(shared)
    assert hot_keys(small, large) == []
    assert len({k for k in large if k.startswith("by-state|STATE#active#")}) > 1


def test_the_check_finds_the_hot_keys_of_an_unsharded_index(
    run_users: Run, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("voice.table.KEY_SHARDS", 1)
    report_capacity(control_plane.dynamodb, control_plane.table, free=FLEET_SLOTS)
    small = run_users("few-", 2)
    large = run_users("many-", 6)
    hot = hot_keys(small, large)
    assert "by-state|STATE#active#00" in hot and "by-state|CLEANUP#00" in hot, hot


def _legacy(cp: ControlPlane, session_id: str, pk: str, due: datetime) -> None:
    """Puts a session back under the by-state key it had before the index was sharded."""
    cp.dynamodb.update_item(
        TableName=cp.table,
        Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET gsi2pk = :pk, gsi2sk = :due, join_by = :due",
        ExpressionAttributeValues={
            ":pk": {"S": pk},
            ":due": {"S": due.isoformat(timespec="milliseconds")},
        },
    )


def test_items_from_before_the_split_are_still_found(control_plane: ControlPlane) -> None:
    h = control_plane.headers()
    old = invoke("POST", f"{BASE}/session", headers=h, json={}).body["session_id"]
    invoke("POST", f"{BASE}/session", headers=h, json={})
    # Its join window closed over an hour ago (past any call it could have become).
    _legacy(control_plane, old, "STATE#pending", datetime.now(UTC) - timedelta(hours=2))
    assert invoke("GET", f"{BASE}/health").body["active_sessions"] == 2
    assert run_sync(get_container().audit.run(repair=False)).live_sessions == 2

    # A heartbeat a worker wrote before the split still counts for admission.
    report_capacity(control_plane.dynamodb, control_plane.table, free=0)
    assert invoke("POST", f"{BASE}/session", headers=h, json={}).status == 503
    now = datetime.now(UTC)
    control_plane.dynamodb.put_item(
        TableName=control_plane.table,
        Item=Heartbeat(
            worker_id="old",
            agent_name=AGENT_NAME,
            free_slots=5,
            total_slots=5,
            at=now,
            valid_until=now + timedelta(minutes=5),
        ).to_item()
        | {"pk": {"S": "FLEET"}},
    )
    assert invoke("POST", f"{BASE}/session", headers=h, json={}).status == 201

    counts = handler({"source": "aws.events"}, LambdaContext(function_name="voice-reaper"))
    assert counts["ReaperExpired"] == 1
    assert invoke("GET", f"{BASE}/session/{old}", headers=h).body["status"] == "expired"
