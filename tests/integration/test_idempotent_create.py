"""`Idempotency-Key` on POST /session: through the Mangum handler, over HTTP, and at the store."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from functions.domain.errors import IdempotencyKeyInUse
from functions.sessions.new_session import NewSession
from functions.sessions.service import SessionService
from functions.settings import get_settings
from functions.store.dynamo import SessionStore
from functions.store.livekit import LiveKitRooms, LiveKitTokens
from infra.local.stack import free_port
from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import Reply, invoke
from tests.support.servers import ServerThread
from voice.config import get_config

BASE = "/voice/realtime"


def keyed_create(cp: ControlPlane, key: str, user: str = "alice", **body: object) -> Reply:
    headers = cp.headers(user) | {"Idempotency-Key": key}
    return invoke("POST", f"{BASE}/session", headers=headers, json=body)


def test_a_retried_create_returns_the_same_session_and_token(control_plane: ControlPlane) -> None:
    first = keyed_create(control_plane, "order-42", agent_type="single_agent")
    again = keyed_create(control_plane, "order-42", agent_type="single_agent")
    assert first.status == again.status == 201, (first.body, again.body)
    assert again.body["session_id"] == first.body["session_id"]
    assert again.body["token"] == first.body["token"]
    assert again.body["room_name"] == first.body["room_name"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers


def test_replays_take_one_slot(control_plane: ControlPlane) -> None:
    for _ in range(3):
        assert keyed_create(control_plane, "one-slot").status == 201
    # The limit is 3: the keyed session holds one slot, so two more fit and a third does not.
    plain = [keyed_create(control_plane, f"other-{i}").status for i in range(3)]
    assert plain == [201, 201, 429]
    listed = invoke("GET", f"{BASE}/sessions", headers=control_plane.headers()).body
    assert len(listed["sessions"]) == 3


def test_the_same_key_with_another_body_is_422_naming_the_header(
    control_plane: ControlPlane,
) -> None:
    assert keyed_create(control_plane, "k1", agent_type="single_agent").status == 201
    r = keyed_create(control_plane, "k1", agent_type="smart_router")
    assert r.status == 422
    assert r.body["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in r.body["message"]


def test_key_order_and_spacing_do_not_make_a_body_different(control_plane: ControlPlane) -> None:
    headers = control_plane.headers() | {"Idempotency-Key": "same-body"}
    first = invoke(
        "POST",
        f"{BASE}/session",
        headers=headers,
        body='{"agent_type": "single_agent", "initial_greeting": false}',
    )
    again = invoke(
        "POST",
        f"{BASE}/session",
        headers=headers,
        body='{"initial_greeting":false,"agent_type":"single_agent"}',
    )
    assert first.status == again.status == 201
    assert again.body["session_id"] == first.body["session_id"]


def test_keys_are_per_user(control_plane: ControlPlane) -> None:
    alice = keyed_create(control_plane, "shared-key", user="alice")
    bob = keyed_create(control_plane, "shared-key", user="bob")
    assert alice.status == bob.status == 201
    assert bob.body["session_id"] != alice.body["session_id"]
    assert bob.body["token"] != alice.body["token"]
    assert bob.body["room_name"].startswith("voice-bob-")


def test_a_create_refused_by_the_limit_does_not_use_up_its_key(
    control_plane: ControlPlane,
) -> None:
    ids = [keyed_create(control_plane, f"fill-{i}").body["session_id"] for i in range(3)]
    assert keyed_create(control_plane, "late").status == 429
    ended = invoke("DELETE", f"{BASE}/session/{ids[0]}", headers=control_plane.headers())
    assert ended.status == 200
    retried = keyed_create(control_plane, "late")
    assert retried.status == 201
    assert retried.body["session_id"] not in ids
    assert "idempotent-replayed" not in retried.headers


def test_a_replay_shows_the_session_as_it_is_now(control_plane: ControlPlane) -> None:
    first = keyed_create(control_plane, "then-ended")
    sid = first.body["session_id"]
    invoke("DELETE", f"{BASE}/session/{sid}", headers=control_plane.headers())
    again = keyed_create(control_plane, "then-ended")
    assert again.status == 201
    assert again.body["session_id"] == sid
    assert again.body["status"] == "ended"


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_422_naming_the_header(control_plane: ControlPlane, key: str) -> None:
    r = keyed_create(control_plane, key)
    assert r.status == 422, r.body
    assert r.body["error"] == "validation_error"
    assert r.body["message"].startswith("Idempotency-Key:")


def test_ten_racing_identical_creates_make_one_session(
    control_plane: ControlPlane, serialized_dynamodb: None
) -> None:
    from functions.api.app import create_app

    headers = control_plane.headers() | {"Idempotency-Key": "flaky-network"}
    with ServerThread(create_app(), free_port()) as server:

        def create(_: int) -> httpx.Response:
            return httpx.post(
                f"{server.url}{BASE}/session",
                headers=headers,
                json={"agent_type": "single_agent"},
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=10) as pool:
            replies = list(pool.map(create, range(10)))
        assert [r.status_code for r in replies] == [201] * 10
        assert len({r.json()["session_id"] for r in replies}) == 1
        assert len({r.json()["token"] for r in replies}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in replies) == 9
        listed = httpx.get(f"{server.url}{BASE}/sessions", headers=headers, timeout=30).json()
        assert len(listed["sessions"]) == 1
        other = httpx.post(
            f"{server.url}{BASE}/session",
            headers=headers,
            json={"agent_type": "smart_router"},
            timeout=30,
        )
        assert other.status_code == 422
        assert "Idempotency-Key" in other.json()["message"]


# -- at the service, with a clock and with DynamoDB's transaction conflicts ------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def service_on(client: Any, clock: Clock) -> SessionService:
    settings = get_settings()
    store = SessionStore(client, settings.sessions_table)
    rooms = LiveKitRooms(settings.livekit, 1)
    return SessionService(store, rooms, LiveKitTokens(settings.livekit), get_config, clock)


def test_a_key_returns_its_session_for_24_hours_then_makes_a_new_one(
    control_plane: ControlPlane,
) -> None:
    clock = Clock()
    sessions = service_on(control_plane.dynamodb, clock)
    first = sessions.create("alice", NewSession(), "daily")
    clock.now += timedelta(hours=23, minutes=59)
    assert sessions.create("alice", NewSession(), "daily").record.session_id == (
        first.record.session_id
    )
    clock.now = first.record.created_at + timedelta(hours=24)
    later = sessions.create("alice", NewSession(), "daily")
    assert later.record.session_id != first.record.session_id
    assert not later.replayed


class ConflictingTransactions:
    """A DynamoDB client on which another create's transaction is in flight: the next write
    transaction is cancelled with `TransactionConflict`, as DynamoDB cancels it, after `meanwhile`
    (the other create, committed or not) has run."""

    def __init__(self, client: Any, meanwhile: Callable[[], None]) -> None:
        self._client = client
        self._meanwhile = meanwhile
        self.conflicts = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.conflicts == 0:
            self.conflicts += 1
            self._meanwhile()
            reasons = [{"Code": "TransactionConflict"} for _ in kwargs["TransactItems"]]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_duplicate_colliding_with_a_committed_create_returns_its_session(
    control_plane: ControlPlane,
) -> None:
    clock = Clock()
    winner = service_on(control_plane.dynamodb, clock)
    won: list[str] = []

    def other_create_commits() -> None:
        won.append(winner.create("alice", NewSession(), "collide").record.session_id)

    loser = service_on(ConflictingTransactions(control_plane.dynamodb, other_create_commits), clock)
    replay = loser.create("alice", NewSession(), "collide")
    assert replay.replayed
    assert [replay.record.session_id] == won


def test_a_duplicate_colliding_with_a_create_still_in_flight_is_409_with_retry_after(
    control_plane: ControlPlane,
) -> None:
    clock = Clock()
    client = ConflictingTransactions(control_plane.dynamodb, meanwhile=lambda: None)
    sessions = service_on(client, clock)
    with pytest.raises(IdempotencyKeyInUse) as raised:
        sessions.create("alice", NewSession(), "in-flight")
    assert raised.value.status_code == 409
    assert raised.value.headers == {"Retry-After": "1"}
    assert "Idempotency-Key" in raised.value.message
    # Nothing was written: the retry the client makes after Retry-After creates the session.
    retried = sessions.create("alice", NewSession(), "in-flight")
    assert not retried.replayed
    assert retried.record.status == "pending"


def test_the_in_flight_answer_over_http_is_409_with_retry_after_naming_the_header(
    control_plane: ControlPlane,
) -> None:
    from functions.api.app import create_app
    from functions.api.deps import Sessions

    app = create_app()
    colliding = service_on(ConflictingTransactions(control_plane.dynamodb, lambda: None), Clock())
    app.dependency_overrides[Sessions.__metadata__[0].dependency] = lambda: colliding
    headers = control_plane.headers() | {"Idempotency-Key": "in-flight-http"}
    with ServerThread(app, free_port()) as server:
        r = httpx.post(f"{server.url}{BASE}/session", headers=headers, json={}, timeout=30)
    assert r.status_code == 409
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"] == "idempotency_key_in_use"
    assert r.json()["message"].startswith("Idempotency-Key:")
