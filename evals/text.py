"""Text mode: the agent built from the version's definition by the worker's own code (agents,
router, specialists, tools, MCP), driven with text in an `AgentSession` with no audio and no room."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession, llm, mock_tools

from evals.models import SimulatedCaller
from evals.results import Conversation, Event
from evals.scenario import Scenario
from voice.config.schema import VoiceConfig
from voice.metadata import DispatchMetadata, PhoneLeg
from worker.agents import (
    CallData,
    RouterAgent,
    SingleAgent,
    SpecialistAgent,
    build_toolsets,
    first_agent,
)
from worker.call import greet, install_error_handler, mcp_servers_in_use
from worker.logs import logger
from worker.pipeline import build_llm
from worker.settings import WorkerEnv

# A phone call's leg for `channel: phone` scenarios (it gives the agent its phone tools).
EVAL_NUMBER = "+15550100"
EVAL_CALLER = "+15550199"
_AGENT_CLASSES = (SingleAgent, RouterAgent, SpecialistAgent)


def dispatch_for(
    scenario: Scenario, config: VoiceConfig, agent_id: str | None, version: int | None
) -> DispatchMetadata:
    """What the API would put on this call's dispatch."""
    agent = config.realtime.agent
    phone = None
    if scenario.channel == "phone":
        phone = PhoneLeg(direction="inbound", number=EVAL_NUMBER, remote=EVAL_CALLER)
    return DispatchMetadata(
        session_id=f"eval-{re.sub(r'[^a-z0-9]+', '-', scenario.name.lower())}",
        agent_type=agent.type,
        initial_greeting=agent.initial_greeting,
        voice_profile=agent.voice_profile,
        instructions=scenario.instructions,
        variables=scenario.variables,
        phone=phone,
        agent_id=agent_id,
        agent_version=version,
    )


def _mocks(scenario: Scenario, conv: Conversation) -> dict[str, Callable[..., Any]]:
    """The scenario's tool results; `end_call` is always mocked (it would delete a room)."""

    def returning(result: str) -> Callable[..., Any]:
        async def mocked() -> str:
            return result

        return mocked

    mocks = {name: returning(m.result) for name, m in scenario.tools.items()}
    goodbye = scenario.tools.get("end_call")

    async def end_call() -> str | None:
        conv.ended_by_agent = True
        return goodbye.result if goodbye else None

    mocks["end_call"] = end_call
    return mocks


class _History:
    """Turns the session's chat history into conversation events, each item once, in order."""

    def __init__(self, session: AgentSession[CallData], conv: Conversation) -> None:
        self.session = session
        self.conv = conv
        self.seen: set[str] = set()
        self.calls: dict[str, str] = {}

    def collect(self, since: float | None) -> list[str]:
        """Adds the new items; the first agent reply gets its latency from `since`; returns the
        agent's new words."""
        said: list[str] = []
        for item in self.session.history.items:
            if item.id in self.seen:
                continue
            self.seen.add(item.id)
            if item.type == "message" and item.role == "assistant":
                text = item.text_content or ""
                latency = None
                if since is not None and not said:
                    latency = max(0.0, (item.created_at - since) * 1000)
                self.conv.add(Event(kind="agent", text=text, latency_ms=latency))
                said.append(text)
            elif item.type == "function_call":
                self.calls[item.call_id] = item.name
                args = llm.utils.parse_function_arguments(item.arguments or "{}")
                self.conv.add(Event(kind="tool_call", name=item.name, arguments=dict(args)))
            elif item.type == "function_call_output":
                name = self.calls.get(item.call_id, item.name)
                self.conv.add(Event(kind="tool_output", name=name, text=str(item.output)))
            elif item.type == "agent_handoff" and item.old_agent_id is not None:
                self.conv.add(Event(kind="handoff", name=item.new_agent_id))
        return said


async def run_text(
    scenario: Scenario,
    config: VoiceConfig,
    caller: SimulatedCaller,
    *,
    env: WorkerEnv | None = None,
    agent_id: str | None = None,
    version: int | None = None,
) -> Conversation:
    """One conversation of `scenario` with the agent `config` describes."""
    env = env or WorkerEnv.from_env()
    conv = Conversation()
    dispatch = dispatch_for(scenario, config, agent_id, version)
    data = CallData(
        config=config,
        dispatch=dispatch,
        env=env,
        toolsets=build_toolsets(mcp_servers_in_use(config.realtime)),
    )
    stop = re.compile(scenario.stop_when, re.I) if scenario.stop_when else None
    session: AgentSession[CallData] = AgentSession(
        llm=build_llm(config, env), vad=None, turn_handling={"turn_detection": None}, userdata=data
    )
    mocks = _mocks(scenario, conv)
    for cls in _AGENT_CLASSES:
        mock_tools(cls, mocks, session=session)
    history = _History(session, conv)
    try:
        async with session:
            install_error_handler(session, logger.bind(session_id=dispatch.session_id))
            await session.start(first_agent(data))
            if dispatch.initial_greeting:
                await greet(session, config.realtime)
            said = history.collect(None)
            for _ in range(scenario.max_turns):
                if conv.ended_by_agent or (stop and any(stop.search(s) for s in said)):
                    break
                line = await caller.next_line(conv)
                if line is None:
                    break
                conv.add(Event(kind="caller", text=line))
                if "interrupts" in scenario.persona.behaviour:
                    session.interrupt()
                started = time.time()
                await session.run(user_input=line)
                said = history.collect(started)
            if conv.ended_by_agent:
                conv.add(Event(kind="end_call"))
    finally:
        for toolset in data.toolsets.values():
            await toolset.aclose()
    return conv
