"""Scenario and suite files: what a simulated caller does and what the agent is expected to do.

A suite is a folder: `suite.yaml` (name, pass threshold) and one YAML file per scenario. Every
mistake is reported as `<file>: <field>: <what is wrong>`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voice.config.loader import describe_error

Behaviour = Literal["interrupts", "terse", "changes_mind", "silent"]
Mode = Literal["text", "audio"]
SUITE_FILE = "suite.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Strict):
    """Who calls: what they want and how they behave."""

    wants: str = Field(default="", max_length=2000)
    behaviour: list[Behaviour] = []


class ToolMock(_Strict):
    """A tool's result in this scenario, instead of running it (an MCP server, a phone tool)."""

    result: str = Field(max_length=4000)


class ToolCall(_Strict):
    name: str = Field(min_length=1)
    # A subset match: these arguments with these values; others may be there too.
    arguments: dict[str, Any] = {}


class Expectation(_Strict):
    """One thing the agent must do; exactly one of the fields is set."""

    says: str | None = Field(default=None, min_length=1)
    says_regex: str | None = Field(default=None, min_length=1)
    calls_tool: ToolCall | None = None
    hands_off: str | None = Field(default=None, min_length=1)
    ends_call: Literal[True] | None = None
    within_ms: Annotated[int, Field(gt=0, le=120_000)] | None = None
    judge: str | None = Field(default=None, min_length=3, max_length=1000)

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        set_ = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_) != 1:
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(f"give exactly one of {kinds} (got {set_ or 'none'})")
        if self.says_regex is not None:
            try:
                re.compile(self.says_regex)
            except re.error as exc:
                raise ValueError(f"says_regex is not a regular expression: {exc}") from exc
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    def describe(self) -> str:
        value = getattr(self, self.kind)
        if isinstance(value, ToolCall):
            value = f"{value.name} {value.arguments}" if value.arguments else value.name
        return f"{self.kind}: {value}"


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    persona: Persona = Persona()
    # Said first, in order, word for word; the simulated caller improvises after them.
    lines: list[Annotated[str, Field(min_length=1)]] = []
    # Caller turns at most (scripted and improvised together).
    max_turns: Annotated[int, Field(ge=0, le=50)] = 6
    # The conversation stops once the agent says something matching this.
    stop_when: str | None = None
    # Per-call overrides, as POST /session takes them.
    instructions: str | None = None
    variables: dict[str, str] = {}
    channel: Literal["web", "phone"] = "web"
    tools: dict[str, ToolMock] = {}
    expect: list[Expectation] = Field(min_length=1)
    modes: list[Mode] = ["text", "audio"]
    # Audio: how long a silent caller waits for the agent to speak.
    silence_seconds: Annotated[float, Field(gt=0, le=120)] = 8.0

    @model_validator(mode="after")
    def _checked(self) -> Scenario:
        if self.stop_when is not None:
            try:
                re.compile(self.stop_when)
            except re.error as exc:
                raise ValueError(f"stop_when is not a regular expression: {exc}") from exc
        if "silent" in self.persona.behaviour and self.lines:
            raise ValueError("a silent caller says nothing: remove lines or the silent behaviour")
        return self

    @property
    def silent(self) -> bool:
        return "silent" in self.persona.behaviour


class SuiteSettings(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    # The share of runs that must pass for the suite to pass (and the CI exit code to be 0).
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class Suite(BaseModel):
    settings: SuiteSettings
    path: Path
    scenarios: list[tuple[Path, Scenario]]


class ScenarioError(ValueError):
    """A suite or scenario file that does not validate; each line names the file and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _field_errors(path: Path, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        out.append(f"{path}: {loc}: {describe_error(err)}")
    return out


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: not valid YAML: {exc}"]) from exc
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot be read: {exc.strerror}"]) from exc


def load_scenario(path: Path) -> Scenario:
    data = _read(path)
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{path}: (top level): must be a mapping (name, persona, expect, ...)"]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_field_errors(path, exc)) from exc


def load_suite(folder: Path) -> Suite:
    """The suite in `folder` (or a single scenario file as a suite of one); every file is checked
    and every error is reported, not only the first."""
    if folder.is_file():
        scenario = load_scenario(folder)
        settings = SuiteSettings(name=folder.stem)
        return Suite(settings=settings, path=folder, scenarios=[(folder, scenario)])
    if not folder.is_dir():
        raise ScenarioError([f"{folder}: no such suite folder or scenario file"])
    errors: list[str] = []
    settings = SuiteSettings(name=folder.name)
    suite_file = folder / SUITE_FILE
    if suite_file.exists():
        data = _read(suite_file) or {}
        try:
            settings = SuiteSettings.model_validate({"name": folder.name, **data})
        except ValidationError as exc:
            errors += _field_errors(suite_file, exc)
        except TypeError:
            errors.append(f"{suite_file}: (top level): must be a mapping (name, threshold)")
    scenarios = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == SUITE_FILE:
            continue
        try:
            scenarios.append((path, load_scenario(path)))
        except ScenarioError as exc:
            errors += exc.errors
    names = [s.name for _, s in scenarios]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{folder}: name: {name!r} is used by more than one scenario")
    if not scenarios and not errors:
        errors.append(f"{folder}: holds no scenario files (*.yaml besides {SUITE_FILE})")
    if errors:
        raise ScenarioError(errors)
    return Suite(settings=settings, path=folder, scenarios=scenarios)
