"""The worker's side of the control plane's authority: the session check and capacity heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.domain.models import SessionEnd, SessionRecord, SessionStatus
from functions.store.dynamo import FleetStore, SessionStore
from infra.template import create_sessions_table
from voice.table import JOIN_GRACE, SessionGate
from worker.emf import EmfEmitter
from worker.gate import SessionGateReader
from worker.heartbeat import CapacityReporter, HeartbeatWriter

TABLE = "voice-sessions-unit"


@pytest.fixture
def table() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_sessions_table(client, TABLE)
        yield client


def session(
    join_by: datetime | None, status: SessionStatus = SessionStatus.PENDING
) -> SessionRecord:
    now = datetime.now(UTC)
    return SessionRecord(
        session_id="0b6f7c1e-8d4a-4f0e-9a52-3c1d2e4f5a6b",
        user_id="alice",
        room_name="voice-alice-0b6f7c1e-8d4a-4f0e-9a52-3c1d2e4f5a6b",
        agent_type="single_agent",
        initial_greeting=True,
        status=status,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        token_expires_at=now + timedelta(hours=2),
        join_by=join_by,
        config_version="v1",
        max_session_duration=3600,
    )


@pytest.mark.parametrize(
    ("status", "join_in", "admitted"),
    [
        ("pending", timedelta(seconds=60), True),
        ("pending", -JOIN_GRACE + timedelta(seconds=2), True),  # a webhook may lag the join
        ("pending", -JOIN_GRACE - timedelta(seconds=1), False),
        ("active", -timedelta(hours=1), True),
        ("ended", timedelta(seconds=60), False),
        ("expired", timedelta(seconds=60), False),
        ("failed", timedelta(seconds=60), False),
    ],
)
def test_only_a_live_session_inside_its_join_window_admits_an_agent(
    status: str, join_in: timedelta, admitted: bool
) -> None:
    now = datetime.now(UTC)
    gate = SessionGate(status=status, join_by=now + join_in)
    assert gate.admits_agent(now, JOIN_GRACE) is admitted


def test_the_worker_reads_the_gate_of_a_session_the_control_plane_wrote(table: Any) -> None:
    store = SessionStore(table, TABLE)
    reader = SessionGateReader(table, TABLE)
    rec = session(join_by=datetime.now(UTC) + timedelta(seconds=120))
    assert reader.admits(rec.session_id) is False  # unknown
    store.create(rec, max_live=3)
    assert reader.admits(rec.session_id) is True
    store.finish(rec, SessionEnd(status=SessionStatus.ENDED, at=datetime.now(UTC), reason="x"))
    assert reader.admits(rec.session_id) is False


def test_a_session_past_its_join_window_admits_no_agent(table: Any) -> None:
    rec = session(join_by=datetime.now(UTC) - JOIN_GRACE - timedelta(seconds=1))
    SessionStore(table, TABLE).create(rec, max_live=3)
    assert SessionGateReader(table, TABLE).admits(rec.session_id) is False


@dataclass
class FakeServer:
    id: str = "AW_test"
    draining: bool = False
    active_jobs: list[object] = field(default_factory=list)


async def test_heartbeats_report_free_slots_and_a_leaving_worker_lapses_at_once(
    table: Any,
) -> None:
    running = SimpleNamespace(
        job=SimpleNamespace(room=SimpleNamespace(name="voice-r1")),
        accept_arguments=SimpleNamespace(identity="agent-AJ_1"),
    )
    server = FakeServer(active_jobs=[running])
    writer = HeartbeatWriter(table, TABLE, "openagents-voice", interval=5)
    lines: list[str] = []

    class Sink:
        def write(self, s: str) -> None:
            lines.append(s)

        def flush(self) -> None:
            pass

    reporter = CapacityReporter(
        server,
        writer,
        total=3,
        interval=5,
        emf=EmfEmitter("T", stream=Sink()),  # type: ignore[arg-type]
    )
    fleet = FleetStore(table, TABLE)
    await reporter.beat()
    [beat] = fleet.heartbeats(datetime.now(UTC))
    assert (beat.worker_id, beat.free_slots, beat.total_slots) == ("AW_test", 2, 3)
    assert '"FreeSlots":2' in lines[-1] and '"TotalSlots":3' in lines[-1]

    server.draining = True
    await reporter.beat()
    assert fleet.heartbeats(datetime.now(UTC))[0].free_slots == 0

    await reporter.aclose()
    assert fleet.heartbeats(datetime.now(UTC)) == []


async def test_an_unregistered_worker_is_not_capacity_yet(table: Any) -> None:
    server = FakeServer(id="unregistered")
    writer = HeartbeatWriter(table, TABLE, "openagents-voice", interval=5)
    reporter = CapacityReporter(server, writer, total=3, interval=5, emf=EmfEmitter("T"))
    await reporter.beat()
    assert FleetStore(table, TABLE).heartbeats(datetime.now(UTC)) == []
