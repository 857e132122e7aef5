"""The worker's read of an agent version: from the API's own item, once per process, off the loop."""

from __future__ import annotations

import asyncio
import io
import json

import boto3
from loguru import logger

from tests.support.control_plane import ControlPlane
from tests.support.lambda_events import invoke
from voice.agents import version_key
from voice.config import get_config
from voice.metadata import DispatchMetadata
from worker.emf import EmfEmitter
from worker.report import CallRecorder
from worker.versions import VersionReader, spec_for_job

AGENTS = "/voice/realtime/agents"


def published(cp: ControlPlane, instructions: str) -> str:
    agent_id = invoke("POST", AGENTS, headers=cp.headers(), json={"name": "a"}).body["agent_id"]
    body = {"config": {"agent": {"instructions": instructions}}}
    r = invoke("POST", f"{AGENTS}/{agent_id}/versions", headers=cp.headers(), json=body)
    assert r.status == 201, r.body
    return agent_id


def metadata(agent_id: str, version: int) -> str:
    return DispatchMetadata(
        session_id="s-1",
        agent_type="single_agent",
        initial_greeting=True,
        agent_id=agent_id,
        agent_version=version,
    ).to_json()


def test_the_worker_reads_a_version_once_and_builds_from_it(
    control_plane: ControlPlane,
) -> None:
    agent_id = published(control_plane, "You sell bicycles.")
    reader = VersionReader(boto3.client("dynamodb"), control_plane.table)
    spec = asyncio.run(spec_for_job(metadata(agent_id, 1), reader, logger))
    assert spec is not None
    assert spec.agent.instructions == "You sell bicycles."
    built = spec.applied_to(get_config().config)
    assert built.realtime.agent.instructions == "You sell bicycles."
    # Versions never change: the process keeps the first read (gone from the table, still served).
    control_plane.dynamodb.delete_item(TableName=control_plane.table, Key=version_key(agent_id, 1))
    assert asyncio.run(spec_for_job(metadata(agent_id, 1), reader, logger)) == spec


def test_a_version_that_cannot_be_read_leaves_the_call_to_the_config_agent(
    control_plane: ControlPlane,
) -> None:
    agent_id = published(control_plane, "You sell bicycles.")
    reader = VersionReader(boto3.client("dynamodb"), control_plane.table)
    lines = io.StringIO()
    sink = logger.add(lines, level="ERROR", format="{message}")
    try:
        assert asyncio.run(spec_for_job(metadata(agent_id, 7), reader, logger)) is None
    finally:
        logger.remove(sink)
    assert "could not read the agent version" in lines.getvalue()
    # A job that names no version never reads the table.
    plain = DispatchMetadata(session_id="s", agent_type="single_agent", initial_greeting=True)
    assert asyncio.run(spec_for_job(plain.to_json(), None, logger)) is None


def test_turn_metrics_of_a_version_carry_agent_and_version_dimensions() -> None:
    out = io.StringIO()
    recorder = CallRecorder(
        session_id="s",
        room="r",
        job_id="j",
        agent_type="single_agent",
        emf=EmfEmitter("Test", stream=out),
        agent_id="agt_1",
        agent_version=3,
    )
    recorder.emf.emit({"EndToEndLatency": (420.0, "Milliseconds")}, recorder.dimensions)  # type: ignore[union-attr]
    record = json.loads(out.getvalue())
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service"],
        ["service", "Agent", "Version"],
    ]
    assert (record["Agent"], record["Version"]) == ("agt_1", "3")
    plain = CallRecorder(session_id="s", room="r", job_id="j", agent_type="single_agent")
    assert plain.dimensions is None
