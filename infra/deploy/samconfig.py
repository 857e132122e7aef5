"""Reads and edits the deploy settings `sam deploy --guided` saved in samconfig.toml."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

SAMCONFIG = Path("samconfig.toml")


@dataclass(frozen=True)
class DeploySettings:
    stack_name: str
    region: str | None
    parameters: dict[str, str]


def parse_overrides(value: str | list[str]) -> dict[str, str]:
    """`Key=Value Key2="v 2"` (or the list form) as a dict."""
    items = value if isinstance(value, list) else shlex.split(value)
    pairs = (item.split("=", 1) for item in items if "=" in item)
    return {key: val for key, val in pairs}


def format_overrides(parameters: dict[str, str]) -> str:
    return " ".join(f'{key}="{val}"' for key, val in parameters.items())


def read_settings(path: Path = SAMCONFIG, env: str = "default") -> DeploySettings:
    if not path.exists():
        raise SystemExit(f"{path} not found: run `make deploy` once (it runs sam deploy --guided)")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    section = data.get(env, {}).get("deploy", {}).get("parameters", {})
    global_section = data.get(env, {}).get("global", {}).get("parameters", {})
    stack = section.get("stack_name") or global_section.get("stack_name")
    if not stack:
        raise SystemExit(f"{path} has no stack_name under [{env}.deploy.parameters]")
    return DeploySettings(
        stack_name=stack,
        region=section.get("region") or global_section.get("region"),
        parameters=parse_overrides(section.get("parameter_overrides", "")),
    )


def set_parameter(path: Path, key: str, value: str, env: str = "default") -> None:
    """Sets one parameter override, keeping the rest of the file as it is."""
    text = path.read_text(encoding="utf-8")
    settings = read_settings(path, env)
    parameters = {**settings.parameters, key: value}
    line = f"parameter_overrides = {_toml_string(format_overrides(parameters))}"
    pattern = re.compile(r"^parameter_overrides\s*=.*$", re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: line, text, count=1)
    else:
        header = f"[{env}.deploy.parameters]"
        if header not in text:
            raise SystemExit(f"{path} has no {header} section")
        text = text.replace(header, f"{header}\n{line}", 1)
    path.write_text(text, encoding="utf-8")
    if read_settings(path, env).parameters.get(key) != value:
        raise SystemExit(f"could not record {key} in {path}")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
