"""The worker's read of an agent version: from the API's own item, once per process, off the loop."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest
import yaml
from loguru import logger

from functions.sessions.phone import inbound_dispatch
from infra.local.paths import CONFIG_FILE
from tests.support.config_files import config_with
from tests.support.control_plane import ControlPlane, reset_control_plane
from tests.support.lambda_events import invoke
from tests.support.livekit_events import post_event, sip_event_body
from voice.agents import version_key
from voice.config import get_config
from voice.metadata import DispatchMetadata
from voice.rooms import session_id_from_room
from worker.emf import EmfEmitter
from worker.report import CallRecorder
from worker.versions import VersionReader, version_for_job

AGENTS = "/voice/realtime/agents"
ROOM_A = "phone-_+15550123_Xy12Ab"
ROOM_B = "phone-_+15550987_Zz34Cd"


def sip_phone(caller: str) -> dict[str, str]:
    return {
        "sip.trunkPhoneNumber": "+15550100",
        "sip.phoneNumber": caller,
        "sip.callStatus": "active",
    }


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
    job = asyncio.run(version_for_job(metadata(agent_id, 1), "s-1", reader, logger))
    assert job is not None
    assert (job.agent_id, job.version) == (agent_id, 1)
    assert job.spec.agent.instructions == "You sell bicycles."
    built = job.spec.applied_to(get_config().config)
    assert built.realtime.agent.instructions == "You sell bicycles."
    # Versions never change: the process keeps the first read (gone from the table, still served).
    control_plane.dynamodb.delete_item(TableName=control_plane.table, Key=version_key(agent_id, 1))
    assert asyncio.run(version_for_job(metadata(agent_id, 1), "s-1", reader, logger)) == job


def test_a_version_that_cannot_be_read_leaves_the_call_to_the_config_agent(
    control_plane: ControlPlane,
) -> None:
    agent_id = published(control_plane, "You sell bicycles.")
    reader = VersionReader(boto3.client("dynamodb"), control_plane.table)
    lines = io.StringIO()
    sink = logger.add(lines, level="ERROR", format="{message}")
    try:
        assert asyncio.run(version_for_job(metadata(agent_id, 7), "s-1", reader, logger)) is None
    finally:
        logger.remove(sink)
    assert "could not read the agent version" in lines.getvalue()
    # A job that names no version never reads the table.
    plain = DispatchMetadata(session_id="s", agent_type="single_agent", initial_greeting=True)
    assert asyncio.run(version_for_job(plain.to_json(), "s", None, logger)) is None


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


def test_an_inbound_call_runs_the_version_its_session_records(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.wiring import get_container

    key, _ = get_container().keys.create("dev")
    dev = {"x-api-key": key, "content-type": "application/json"}
    agent_id = invoke("POST", AGENTS, headers=dev, json={"name": "phones"}).body["agent_id"]
    for text in ("one", "two"):
        body = {"config": {"agent": {"instructions": f"Version {text}."}}}
        assert invoke("POST", f"{AGENTS}/{agent_id}/versions", headers=dev, json=body).status == 201
    split = {"traffic": [{"version": 1, "percent": 50}, {"version": 2, "percent": 50}]}
    invoke("PUT", f"{AGENTS}/{agent_id}/traffic", headers=dev | {"if-match": '"1"'}, json=split)
    # The repo's number, now answered by the agent (its owner is the number's user, dev).
    realtime = yaml.safe_load(CONFIG_FILE.read_text())["voice"]["realtime"]
    [number] = realtime["telephony"]["inbound"]
    inbound = {"telephony": {"inbound": [number | {"agent_id": agent_id}]}}
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "voice.yaml", inbound)))
    reset_control_plane()
    realtime_config = get_config().config.realtime
    rule = json.loads(
        inbound_dispatch(realtime_config, realtime_config.telephony.inbound[0]).to_json()
    )
    assert rule["agent_id"] == agent_id and "agent_version" not in rule

    callers = {"+15550123": ROOM_A, "+15550987": ROOM_B}
    reader = VersionReader(boto3.client("dynamodb"), control_plane.table)
    for caller, room in callers.items():
        post_event(sip_event_body("participant_joined", room, sip_phone(caller)))
        expected = invoke(
            "GET",
            f"{AGENTS}/{agent_id}/assignment",
            headers=dev,
            query=urlencode({"phone_number": caller}),
        ).body["version"]
        session_id = session_id_from_room(room)
        shown = invoke("GET", f"/voice/realtime/session/{session_id}", headers=dev).body
        assert (shown["agent_id"], shown["agent_version"]) == (agent_id, expected)
        job = asyncio.run(version_for_job(json.dumps(rule), session_id, reader, logger))
        assert job is not None
        assert (job.version, job.spec.agent.instructions) == (
            expected,
            ("Version one.", "Version two.")[expected - 1],
        )


def test_an_inbound_number_naming_an_agent_its_owner_lacks_is_answered_by_the_config_agent(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    realtime = yaml.safe_load(CONFIG_FILE.read_text())["voice"]["realtime"]
    [number] = realtime["telephony"]["inbound"]
    inbound = {"telephony": {"inbound": [number | {"agent_id": "agt_missing"}]}}
    monkeypatch.setenv("VOICE_CONFIG_URI", str(config_with(tmp_path / "voice.yaml", inbound)))
    reset_control_plane()
    r = post_event(sip_event_body("participant_joined", ROOM_A, sip_phone("+15550123")))
    assert r.body["action"] == "activated"
    reader = VersionReader(boto3.client("dynamodb"), control_plane.table)
    rule = json.dumps(
        {
            "session_id": "",
            "agent_type": "single_agent",
            "initial_greeting": True,
            "agent_id": "agt_missing",
        }
    )
    assert asyncio.run(version_for_job(rule, session_id_from_room(ROOM_A), reader, logger)) is None
