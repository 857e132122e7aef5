"""Operator command for agents: `python -m functions.agents --account USER <command>` on the table.

It uses the same settings as the API (SESSIONS_TABLE, VOICE_CONFIG_URI, AWS credentials and
region, AWS_ENDPOINT_URL for the local emulator), so it works on the local stack and in AWS alike.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from functions.agents.service import AgentService
from functions.domain.agents import Allocation, TrafficEntry
from functions.domain.errors import DomainError
from functions.sessions.service import utcnow
from functions.settings import settings_from_env
from functions.store.dynamo import AgentStore
from functions.wiring import dynamodb_client
from voice.agents import sections_of
from voice.config import get_config, redact


def _traffic_line(alloc: Allocation) -> str:
    split = ", ".join(f"v{e.version} {e.percent}%" for e in alloc.entries)
    why = f" ({alloc.reason})" if alloc.reason else ""
    return (
        f"revision {alloc.revision}: {split}  [{alloc.action} by {alloc.actor} at "
        f"{alloc.at.isoformat()}]{why}"
    )


def _entry(text: str) -> TrafficEntry:
    version, sep, percent = text.partition("=")
    if not sep or not version.isdigit() or not percent.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give VERSION=PERCENT, e.g. 2=10")
    return TrafficEntry(version=int(version), percent=int(percent))


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, allow_unicode=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m functions.agents")
    p.add_argument("--table", help="sessions table (default: $SESSIONS_TABLE)")
    p.add_argument("--account", required=True, help="the API-key user that owns the agents")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the account's agents, their latest version and traffic")
    create = sub.add_parser("create", help="a new agent; prints its id")
    create.add_argument("name")
    publish = sub.add_parser("publish", help="a new version from a YAML file; prints its number")
    publish.add_argument("agent_id")
    publish.add_argument(
        "file", type=Path, help="version sections (agent, providers, ...) or a whole config file"
    )
    publish.add_argument("--note")
    show = sub.add_parser("show", help="one version's complete content, secrets masked")
    show.add_argument("agent_id")
    show.add_argument("version", type=int)
    diff = sub.add_parser("diff", help="what changed between two versions")
    diff.add_argument("agent_id")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int)
    traffic = sub.add_parser("traffic", help="set the split: VERSION=PERCENT ... totalling 100")
    traffic.add_argument("agent_id")
    traffic.add_argument("split", nargs="+", type=_entry)
    traffic.add_argument(
        "--expected-revision",
        type=int,
        help="the revision this replaces (default: the one in force as the command runs)",
    )
    promote = sub.add_parser("promote", help="all traffic to one version")
    promote.add_argument("agent_id")
    promote.add_argument("version", type=int)
    rollback = sub.add_parser("rollback", help="back to the allocation before the one in force")
    rollback.add_argument("agent_id")
    rollback.add_argument("--reason")
    history = sub.add_parser("history", help="every traffic allocation, oldest first")
    history.add_argument("agent_id")
    return p


def run(args: argparse.Namespace, agents: AgentService, out: Callable[[str], None]) -> None:
    who = args.account
    if args.command == "list":
        for agent in agents.list(who):
            line = f"{agent.agent_id}  {agent.name:<24} latest v{agent.latest_version}"
            if agent.latest_version:
                line += "  " + _traffic_line(agents.traffic(who, agent.agent_id))
            out(line)
    elif args.command == "create":
        out(agents.create(who, args.name).agent_id)
    elif args.command == "publish":
        data = yaml.safe_load(args.file.read_text(encoding="utf-8")) or {}
        rec = agents.publish(who, args.agent_id, sections_of(data), args.note)
        out(f"published {rec.agent_id} version {rec.version}")
    elif args.command == "show":
        rec = agents.version(who, args.agent_id, args.version)
        out(_yaml(redact(rec.spec.model_dump(mode="json"))).rstrip())
    elif args.command == "diff":
        old, new = (agents.version(who, args.agent_id, v) for v in (args.old, args.new))
        lines = difflib.unified_diff(
            _yaml(redact(old.spec.model_dump(mode="json"))).splitlines(),
            _yaml(redact(new.spec.model_dump(mode="json"))).splitlines(),
            fromfile=f"v{old.version}",
            tofile=f"v{new.version}",
            lineterm="",
        )
        out("\n".join(lines) or "no difference")
    elif args.command == "traffic":
        expected = args.expected_revision or agents.traffic(who, args.agent_id).revision
        out(_traffic_line(agents.set_traffic(who, args.agent_id, args.split, expected)))
    elif args.command == "promote":
        out(_traffic_line(agents.promote(who, args.agent_id, args.version)))
    elif args.command == "rollback":
        out(_traffic_line(agents.rollback(who, args.agent_id, reason=args.reason)))
    elif args.command == "history":
        for alloc in agents.history(who, args.agent_id):
            out(_traffic_line(alloc))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from_env()
    store = AgentStore(dynamodb_client(), args.table or settings.sessions_table)
    try:
        run(args, AgentService(store, get_config, utcnow), print)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, yaml.YAMLError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
