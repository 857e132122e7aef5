"""ECS task protection against a local stand-in for the ECS agent, ActiveJobs EMF, reports."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from tests.support.ecs_agent import EcsAgent
from voice.report import SessionReport
from worker.emf import EmfEmitter
from worker.fleet import FleetMonitor, TaskProtection
from worker.report import CallRecorder, ReportWriter


class Server:
    def __init__(self) -> None:
        self.active_jobs: list[object] = []


def _emf_records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_protection_is_held_while_a_job_runs_and_released_when_idle(
    ecs_agent: tuple[EcsAgent, str],
) -> None:
    agent, uri = ecs_agent
    server = Server()
    monitor = FleetMonitor(
        server,
        emf=EmfEmitter("Test", stream=io.StringIO()),
        protection=TaskProtection(uri),
        protect_minutes=70,
    )
    await monitor.reconcile(0)
    assert agent.bodies == []  # idle and unprotected: nothing to say
    await monitor.reconcile(1)
    await monitor.reconcile(2)  # still protected: no second call
    await monitor.reconcile(0)
    assert agent.bodies == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 70},
        {"ProtectionEnabled": False},
    ]


async def test_a_refused_protection_request_is_retried_on_the_next_poll(
    ecs_agent: tuple[EcsAgent, str],
) -> None:
    agent, uri = ecs_agent
    agent.refuse = True
    monitor = FleetMonitor(
        Server(),
        emf=EmfEmitter("Test", stream=io.StringIO()),
        protection=TaskProtection(uri),
        protect_minutes=15,
    )
    await monitor.reconcile(1)
    agent.refuse = False
    await monitor.reconcile(1)
    assert [b["ProtectionEnabled"] for b in agent.bodies] == [True, True]


async def test_without_ecs_nothing_is_called_and_active_jobs_is_published() -> None:
    stream = io.StringIO()
    server = Server()
    server.active_jobs = [object(), object()]
    monitor = FleetMonitor(
        server,
        emf=EmfEmitter("VoiceAgents", stream=stream),
        protection=None,
        protect_minutes=15,
        poll_interval=0.01,
        metric_interval=0.05,
    )
    monitor.start()
    await asyncio.sleep(0.12)
    await monitor.aclose()
    records = _emf_records(stream)
    assert len(records) >= 2
    first = records[0]
    assert first["ActiveJobs"] == 2
    assert first["service"] == "voice-worker"
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive == {
        "Namespace": "VoiceAgents",
        "Dimensions": [["service"]],
        "Metrics": [{"Name": "ActiveJobs", "Unit": "Count"}],
    }


def _recorder(stream: io.StringIO) -> CallRecorder:
    return CallRecorder(
        session_id="s-42",
        room="voice-u-s-42",
        job_id="AJ_9",
        agent_type="single_agent",
        emf=EmfEmitter("VoiceAgents", stream=stream),
    )


def _message(role: str, text: str, metrics: dict[str, float]) -> Any:
    from livekit.agents import llm
    from livekit.agents.voice.events import ConversationItemAddedEvent

    item = llm.ChatMessage(role=role, content=[text], metrics=metrics)  # type: ignore[arg-type]
    return ConversationItemAddedEvent(item=item)


def test_recorder_keeps_the_transcript_and_emits_per_turn_latency() -> None:
    stream = io.StringIO()
    rec = _recorder(stream)
    rec.on_item_added(_message("assistant", "Hi there!", {"llm_node_ttft": 0.2}))
    rec.on_item_added(_message("user", "Where is my order?", {"end_of_turn_delay": 0.55}))
    rec.on_item_added(
        _message(
            "assistant",
            "It shipped.",
            {"llm_node_ttft": 0.31, "tts_node_ttfb": 0.12, "e2e_latency": 1.05},
        )
    )
    report = rec.build_report(None)
    assert [(t.role, t.text) for t in report.transcript] == [
        ("assistant", "Hi there!"),
        ("user", "Where is my order?"),
        ("assistant", "It shipped."),
    ]
    assert report.turns[1].model_dump(exclude={"at"}) == {
        "end_of_utterance_delay_ms": 550.0,
        "llm_ttft_ms": 310.0,
        "tts_ttfb_ms": 120.0,
        "end_to_end_ms": 1050.0,
    }
    records = _emf_records(stream)
    last = records[-1]
    assert last["EndOfUtteranceDelay"] == 550.0
    assert last["EndToEndLatency"] == 1050.0
    assert last["session_id"] == "s-42"
    names = {m["Name"]: m["Unit"] for m in last["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {
        "EndOfUtteranceDelay": "Milliseconds",
        "LLMTimeToFirstToken": "Milliseconds",
        "TTSTimeToFirstByte": "Milliseconds",
        "EndToEndLatency": "Milliseconds",
    }
    # The greeting had no user turn before it: only what was measured goes out.
    assert set(records[0]) & {"EndOfUtteranceDelay", "EndToEndLatency"} == set()


def test_report_goes_to_the_local_folder_without_a_bucket(tmp_path: Path) -> None:
    report = _recorder(io.StringIO()).build_report(None, end_reason="room deleted")
    where = ReportWriter(bucket=None, directory=str(tmp_path)).write(report)
    assert where == str(tmp_path / "s-42.json")
    loaded = SessionReport.model_validate_json((tmp_path / "s-42.json").read_text())
    assert loaded == report


def test_report_goes_to_s3_under_reports_prefix() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="voice-reports")
        report = _recorder(io.StringIO()).build_report(None)
        where = ReportWriter(bucket="voice-reports", directory="unused", s3_client=s3).write(report)
        body = s3.get_object(Bucket="voice-reports", Key="reports/s-42.json")["Body"].read()
    assert where == "s3://voice-reports/reports/s-42.json"
    stored = SessionReport.model_validate_json(body)
    assert set(stored.model_dump()) >= {
        "session_id",
        "room",
        "job_id",
        "agent_type",
        "started_at",
        "ended_at",
        "duration_s",
        "transcript",
        "turns",
        "usage",
    }
    assert set(stored.usage.model_dump()) == {
        "stt_audio_seconds",
        "llm_prompt_tokens",
        "llm_completion_tokens",
        "tts_characters",
    }
