"""An agent version's content (the behaviour sections of the config) and its table item; both planes.

A version is validated by the config file's own schema: the sections it sets are laid over the
deployment's config at publish time and the whole is checked, so cross-references (voice profiles,
MCP servers named as tools) resolve exactly as in the file. The stored version is the complete
result, so a later change of the config file never changes what a version does.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from voice.config.analysis import AnalysisSettings
from voice.config.loader import describe_error
from voice.config.patterns import KeyPathError
from voice.config.schema import (
    AgentSettings,
    InterruptionSettings,
    MCPServer,
    Providers,
    TurnDetectionSettings,
    VADSettings,
    VoiceConfig,
    VoiceProfile,
    VoiceSettings,
)

# Where each section of a version lives in the config file (under `voice`).
SECTION_PATHS: dict[str, tuple[str, ...]] = {
    "agent": ("realtime", "agent"),
    "voice_profiles": ("voice_profiles",),
    "providers": ("providers",),
    "vad": ("realtime", "vad"),
    "turn_detection": ("realtime", "turn_detection"),
    "interruptions": ("realtime", "interruptions"),
    "mcp_servers": ("realtime", "mcp_servers"),
    "analysis": ("realtime", "analysis"),
}
SpecSection = Literal[
    "agent",
    "voice_profiles",
    "providers",
    "vad",
    "turn_detection",
    "interruptions",
    "mcp_servers",
    "analysis",
]


class AgentSpec(BaseModel):
    """Everything that decides how an agent behaves; one immutable agent version holds one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: AgentSettings
    voice_profiles: dict[str, VoiceProfile]
    providers: Providers
    vad: VADSettings
    turn_detection: TurnDetectionSettings
    interruptions: InterruptionSettings
    mcp_servers: list[MCPServer]
    # Post-call analysis of this version's calls; None (not set when published) follows the
    # config file's `voice.realtime.analysis`, the global default.
    analysis: AnalysisSettings | None = None

    @classmethod
    def of_config(cls, config: VoiceConfig) -> AgentSpec:
        """The config file's own agent, as a version would hold it."""
        voice = config.voice
        return cls(
            agent=voice.realtime.agent,
            voice_profiles=voice.voice_profiles,
            providers=voice.providers,
            vad=voice.realtime.vad,
            turn_detection=voice.realtime.turn_detection,
            interruptions=voice.realtime.interruptions,
            mcp_servers=voice.realtime.mcp_servers,
        )

    def applied_to(self, config: VoiceConfig) -> VoiceConfig:
        """`config` with this version's sections in place of its own (the worker builds from it)."""
        voice = config.voice
        realtime = voice.realtime.model_copy(
            update={
                "agent": self.agent,
                "vad": self.vad,
                "turn_detection": self.turn_detection,
                "interruptions": self.interruptions,
                "mcp_servers": self.mcp_servers,
            }
            | ({} if self.analysis is None else {"analysis": self.analysis})
        )
        return config.model_copy(
            update={
                "voice": voice.model_copy(
                    update={
                        "voice_profiles": self.voice_profiles,
                        "providers": self.providers,
                        "realtime": realtime,
                    }
                )
            }
        )


class SpecError(ValueError):
    """A version's content that does not validate; `errors` name each field as `config.<path>`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def resolve_spec(changes: dict[str, Any], base: VoiceConfig) -> AgentSpec:
    """The complete version: `changes` (sections, possibly partial) laid over `base`, validated.

    Mappings merge key by key; lists and scalars replace. Raises `SpecError` naming each field.
    """
    unknown = sorted(set(changes) - set(SECTION_PATHS))
    if unknown:
        raise SpecError(
            [
                f"config.{k}: is not a section a version holds; use {list(SECTION_PATHS)}"
                for k in unknown
            ]
        )
    voice = base.voice.model_dump(mode="python")
    for section, value in changes.items():
        *parents, leaf = SECTION_PATHS[section]
        holder = voice
        for p in parents:
            holder = holder[p]
        holder[leaf] = _merged(holder[leaf], value)
    try:
        settings = VoiceSettings.model_validate(voice)
    except ValidationError as exc:
        raise SpecError([_named(err) for err in exc.errors()]) from exc
    spec = AgentSpec.of_config(VoiceConfig(voice=settings))
    if "analysis" in changes:
        spec = spec.model_copy(update={"analysis": settings.realtime.analysis})
    return spec


def sections_of(data: Any) -> dict[str, Any]:
    """A version's sections from a YAML document: the sections themselves, or a whole config
    file (`voice: ...`), of which the sections a version holds are taken."""
    if not isinstance(data, dict):
        raise SpecError(["config: must be a mapping of sections (agent, providers, ...)"])
    voice = data.get("voice")
    if not isinstance(voice, dict):
        return data
    found = {}
    for section, path in SECTION_PATHS.items():
        holder: Any = voice
        for key in path:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if holder is not None:
            found[section] = holder
    return found


def _merged(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        out = copy.copy(base)
        for key, value in change.items():
            out[key] = _merged(base[key], value) if key in base else value
        return out
    return change


def _named(err: Any) -> str:
    loc = tuple(str(p) for p in err["loc"])
    error = (err.get("ctx") or {}).get("error")
    if isinstance(error, KeyPathError):  # a check across sections names its own key
        loc = (*loc, *error.path.split("."))
    for section, path in SECTION_PATHS.items():
        if loc[: len(path)] == path:
            loc = (section, *loc[len(path) :])
            break
    else:
        if not loc:
            return f"config: {describe_error(err)}"
    return f"config.{'.'.join(loc)}: {describe_error(err)}"


# -- the version item, read by the worker -------------------------------------------------------

VERSION_SK_PREFIX = "VERSION#"
# What a worker reads of a version item: its content only (not who made it or the note).
VERSION_PROJECTION = "spec_json"


def agent_pk(agent_id: str) -> str:
    return f"AGENT#{agent_id}"


def version_sk(version: int) -> str:
    # Zero-padded so the versions of an agent sort in order.
    return f"{VERSION_SK_PREFIX}{version:08d}"


def version_key(agent_id: str, version: int) -> dict[str, Any]:
    return {"pk": {"S": agent_pk(agent_id)}, "sk": {"S": version_sk(version)}}
