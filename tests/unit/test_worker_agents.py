"""Text-mode AgentSession runs of the worker's agents with a deterministic fake LLM."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession

from tests.support.fake_llm import FakeLLM, Rule
from voice.config import parse_config
from voice.config.schema import VoiceConfig
from voice.metadata import DispatchMetadata
from worker.agents import CallData, RouterAgent, SingleAgent, SpecialistAgent, build_toolsets
from worker.call import APOLOGY, greet, install_error_handler
from worker.logs import logger
from worker.settings import WorkerEnv

MCP_SERVER = Path(__file__).resolve().parents[1] / "support" / "mcp_server.py"

CONFIG = """
voice:
  realtime:
    agent:
      type: smart_router
      instructions: You are the front desk of Acme.
      greeting: Say hello to the caller.
      specialists:
        - name: billing
          description: invoices and refunds
          instructions: You are billing.
          voice_profile: professional
        - name: orders
          description: where an order is
          instructions: You are the orders desk.
          tools: [orders]
    mcp_servers:
      - name: orders
        transport: stdio
        command: {python}
        args: ["{server}"]
        timeout: 20
"""


def _config() -> VoiceConfig:
    text = CONFIG.format(python=sys.executable, server=MCP_SERVER)
    return parse_config(text, "test", env={})


def _data(config: VoiceConfig, agent_type: str = "smart_router", **kw: Any) -> CallData:
    dispatch = DispatchMetadata(
        session_id="s-1", agent_type=agent_type, initial_greeting=True, **kw
    )
    return CallData(config=config, dispatch=dispatch, env=WorkerEnv(openai_api_key="test"))


def _session(fake: FakeLLM, data: CallData) -> AgentSession[CallData]:
    return AgentSession(llm=fake, vad=None, turn_handling={"turn_detection": None}, userdata=data)


async def _wait_for_assistant_text(session: AgentSession[Any], text: str) -> list[str]:
    said: list[str] = []
    for _ in range(100):
        said = [m.text_content or "" for m in session.history.messages() if m.role == "assistant"]
        if text in said:
            break
        await asyncio.sleep(0.02)
    return said


async def test_greeting_makes_the_agent_speak_first_with_the_configured_instructions() -> None:
    config = _config()
    fake = FakeLLM([Rule(match="say hello", text="Hello, thanks for calling Acme!")])
    data = _data(config, "single_agent")
    async with _session(fake, data) as session:
        await session.start(SingleAgent(data))
        await greet(session, config.realtime)
        said = [m.text_content for m in session.history.messages() if m.role == "assistant"]
    assert said == ["Hello, thanks for calling Acme!"]
    assert "Say hello to the caller." in str(fake.calls[0].items)


async def test_single_agent_answers_with_configured_instructions_and_caller_metadata() -> None:
    config = _config()
    fake = FakeLLM([Rule(match="opening hours", text="We open at nine.")])
    data = _data(config, "single_agent", metadata={"plan": "gold"})
    async with _session(fake, data) as session:
        await session.start(SingleAgent(data))
        result = await session.run(user_input="What are your opening hours?")
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
    system = fake.calls[0].items[0].text_content or ""
    assert system.startswith("You are the front desk of Acme.")
    assert "plan: gold" in system


async def test_router_hands_billing_questions_to_the_billing_specialist() -> None:
    config = _config()
    fake = FakeLLM(
        [
            Rule(match="refund", tool="transfer_to_billing"),
            Rule(match="which team", text="Billing here, about that refund."),
        ]
    )
    data = _data(config)
    async with _session(fake, data) as session:
        await session.start(RouterAgent(data))
        result = await session.run(user_input="I want a refund for my invoice")
        result.expect.next_event().is_function_call(name="transfer_to_billing")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_agent_handoff(new_agent_type=SpecialistAgent)
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        agent = session.current_agent
        assert isinstance(agent, SpecialistAgent)
        assert agent.spec.name == "billing"
        # The specialist carries its own voice profile and the caller's words.
        assert agent.tts is not None and agent.profile is not None
        assert agent.profile.voice_id == "echo"
        carried = [m.text_content for m in agent.chat_ctx.messages() if m.role == "user"]
        assert carried == ["I want a refund for my invoice"]


async def test_specialist_calls_a_tool_served_by_an_mcp_server() -> None:
    config = _config()
    fake = FakeLLM(
        [
            Rule(match="where is my order", tool="transfer_to_orders"),
            Rule(match="which team", tool="order_status", arguments={"order_id": "A17"}),
        ]
    )
    data = _data(config)
    data.toolsets = build_toolsets(config.realtime.mcp_servers)
    async with _session(fake, data) as session:
        await session.start(RouterAgent(data))
        result = await session.run(user_input="Where is my order A17?")
        result.expect.skip_next_event_if(type="function_call", name="transfer_to_orders")
        result.expect.skip_next_event_if(type="function_call_output")
        result.expect.next_event().is_agent_handoff(new_agent_type=SpecialistAgent)
        result.expect.next_event().is_function_call(
            name="order_status", arguments={"order_id": "A17"}
        )
        output = result.expect.next_event().is_function_call_output()
        assert "order A17 shipped on Monday" in output.event().item.output
        result.expect.next_event().is_message(role="assistant")
        for toolset in data.toolsets.values():
            await toolset.aclose()


async def test_llm_failure_is_logged_and_answered_with_an_apology() -> None:
    config = _config()
    fake = FakeLLM([], default="All good now.", fail_times=1)
    data = _data(config, "single_agent")
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="ERROR")
    try:
        async with _session(fake, data) as session:
            install_error_handler(session, logger)
            await session.start(SingleAgent(data))
            await session.run(user_input="hello?")
            said = await _wait_for_assistant_text(session, APOLOGY)
            # The session is still alive: the next turn is answered normally.
            result = await session.run(user_input="hello again")
            reply = result.expect.next_event().is_message(role="assistant")
            assert reply.event().item.text_content == "All good now."
    finally:
        logger.remove(sink)
    assert APOLOGY in said
    assert "provider error" in messages


async def test_per_call_instructions_with_variables_reach_the_system_prompt() -> None:
    config = _config()
    fake = FakeLLM([Rule(match="opening hours", text="We open at nine.")])
    data = _data(
        config,
        "single_agent",
        instructions="The caller is {{name}}; their order is {{order}}.",
        variables={"name": "Dana", "order": "A-17"},
    )
    async with _session(fake, data) as session:
        await session.start(SingleAgent(data))
        await session.run(user_input="What are your opening hours?")
    system = fake.calls[0].items[0].text_content or ""
    assert system.startswith("You are the front desk of Acme.")
    assert "The caller is Dana; their order is A-17." in system


async def test_a_per_call_greeting_is_spoken_as_written_with_variables_filled() -> None:
    config = _config()
    fake = FakeLLM([])
    data = _data(config, "single_agent", greeting="Hi {{name}}!", variables={"name": "Dana"})
    async with _session(fake, data) as session:
        await session.start(SingleAgent(data))
        await greet(session, config.realtime)
        said = await _wait_for_assistant_text(session, "Hi Dana!")
    assert said == ["Hi Dana!"]
    # Spoken as written: the LLM was not asked for the greeting.
    assert fake.calls == []
