"""The agents: a single agent, and a router that hands the caller off to configured specialists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livekit.agents import Agent, RunContext, llm
from livekit.agents.llm import mcp
from livekit.agents.llm.mcp import MCPServerHTTP, MCPServerStdio, MCPToolset

from voice.config.schema import MCPServer, Specialist, VoiceConfig
from voice.metadata import DispatchMetadata
from voice.templating import fill
from worker.phone import phone_tools
from worker.pipeline import build_tts, resolve_profile
from worker.settings import WorkerEnv


@dataclass
class CallData:
    """Per-call state the agents and tools reach through `session.userdata`."""

    config: VoiceConfig
    dispatch: DispatchMetadata
    env: WorkerEnv
    # Toolsets are built once per call and shared, so a handoff reuses the MCP connections.
    toolsets: dict[str, MCPToolset] = field(default_factory=dict)


def build_toolsets(servers: list[MCPServer]) -> dict[str, MCPToolset]:
    toolsets: dict[str, MCPToolset] = {}
    for server in servers:
        mcp_server: mcp.MCPServer
        if server.transport == "http":
            assert server.url is not None  # the schema requires it for http
            mcp_server = MCPServerHTTP(
                url=server.url,
                headers=dict(server.headers) or None,
                timeout=server.timeout,
                client_session_timeout_seconds=server.timeout,
            )
        else:
            assert server.command is not None  # the schema requires it for stdio
            mcp_server = MCPServerStdio(
                command=server.command,
                args=list(server.args),
                client_session_timeout_seconds=server.timeout,
            )
        toolsets[server.name] = MCPToolset(id=server.name, mcp_server=mcp_server)
    return toolsets


def _tools(data: CallData, names: list[str]) -> list[llm.Tool | llm.Toolset]:
    return [*(data.toolsets[n] for n in names if n in data.toolsets), *phone_tools(data)]


def _caller_context(dispatch: DispatchMetadata) -> str:
    if not dispatch.metadata:
        return ""
    pairs = ", ".join(f"{k}: {v}" for k, v in sorted(dispatch.metadata.items()))
    return f"\n\nWhat the app told us about the caller: {pairs}."


def instructions_for_call(dispatch: DispatchMetadata, configured: str) -> str:
    """An agent's configured instructions plus this call's own, with `{{name}}`s filled in."""
    text = fill(configured, dispatch.variables)
    if dispatch.instructions:
        text += "\n\n" + fill(dispatch.instructions, dispatch.variables)
    return text + _caller_context(dispatch)


class SingleAgent(Agent):
    """One agent with `voice.realtime.agent.instructions` and the agent's tools."""

    def __init__(self, data: CallData, chat_ctx: llm.ChatContext | None = None) -> None:
        agent = data.config.realtime.agent
        super().__init__(
            instructions=instructions_for_call(data.dispatch, agent.instructions),
            tools=_tools(data, agent.tools),
            chat_ctx=chat_ctx,
        )


class SpecialistAgent(Agent):
    """A specialist from config: its own instructions, voice and tools."""

    def __init__(
        self, data: CallData, spec: Specialist, chat_ctx: llm.ChatContext | None = None
    ) -> None:
        self.spec = spec
        # Its own voice, when the spec names one; otherwise the session's TTS speaks for it.
        self.profile = (
            resolve_profile(data.config, spec.voice_profile)
            if spec.voice_profile is not None
            else None
        )
        extra: dict[str, Any] = {}
        if self.profile is not None:
            extra["tts"] = build_tts(data.config, self.profile, data.env)
        super().__init__(
            id=f"specialist_{spec.name}",
            instructions=instructions_for_call(data.dispatch, spec.instructions),
            tools=[*_tools(data, spec.tools), _back_to_router_tool(data)],
            chat_ctx=chat_ctx,
            **extra,
        )

    async def on_enter(self) -> None:
        # The caller should hear who picked up without repeating the question.
        self.session.generate_reply(
            instructions="Briefly say which team you are, then continue with the caller's request."
        )


def _back_to_router_tool(data: CallData) -> llm.FunctionTool:
    async def back_to_front_desk(context: RunContext[CallData]) -> Agent:
        agent = context.session.current_agent
        chat_ctx = agent.chat_ctx.copy(exclude_instructions=True, exclude_function_call=True)
        return RouterAgent(data, chat_ctx=chat_ctx)

    return llm.function_tool(
        back_to_front_desk,
        name="back_to_front_desk",
        description=(
            "Send the caller back to the front desk when they ask about something outside "
            "your area."
        ),
    )


def _handoff_tool(data: CallData, spec: Specialist) -> llm.FunctionTool:
    async def transfer(context: RunContext[CallData]) -> Agent:
        agent = context.session.current_agent
        # Instructions stay with each agent; the conversation itself travels with the caller.
        chat_ctx = agent.chat_ctx.copy(exclude_instructions=True, exclude_function_call=True)
        # Only the agent: the new agent's greeting is the reply, the router stays silent.
        return SpecialistAgent(data, spec, chat_ctx=chat_ctx)

    return llm.function_tool(
        transfer,
        name=f"transfer_to_{spec.name}",
        description=f"Hand the caller to the {spec.name} specialist. Use for: {spec.description}",
    )


class RouterAgent(Agent):
    """Answers simple questions itself and hands the caller off to the right specialist."""

    def __init__(self, data: CallData, chat_ctx: llm.ChatContext | None = None) -> None:
        agent = data.config.realtime.agent
        specialists = agent.specialists
        routing = "\n".join(f"- {s.name}: {s.description}" for s in specialists)
        instructions = agent.instructions
        if routing:
            instructions += (
                "\n\nYou are the front desk. When the caller's request belongs to one of these "
                f"specialists, hand them off with the matching transfer tool:\n{routing}"
            )
        super().__init__(
            id="router",
            instructions=instructions_for_call(data.dispatch, instructions),
            tools=[*_tools(data, agent.tools), *(_handoff_tool(data, s) for s in specialists)],
            chat_ctx=chat_ctx,
        )


def first_agent(data: CallData, chat_ctx: llm.ChatContext | None = None) -> Agent:
    """The call's first agent; `chat_ctx`: the conversation so far when it resumes one."""
    if data.dispatch.agent_type == "smart_router":
        return RouterAgent(data, chat_ctx=chat_ctx)
    return SingleAgent(data, chat_ctx=chat_ctx)
