"""`make eval`: the example suite against a local stack of its own, started on free ports.

The stack is the one `make dev` runs (AWS emulator, API, LiveKit; the worker too for audio), so
nothing else may be running and no fixed port is needed. The config file's agent is published as
version 1 of an agent, evaluated through the API, and the result stored with that version. The
models are `OPENAI_API_KEY` / `OPENAI_BASE_URL` when set; otherwise the repository's
deterministic test model server, which checks the plumbing rather than an agent's quality.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from evals.__main__ import main as run_main
from evals.control_plane import PREFIX
from infra.local.paths import ROOT, STATE_DIR
from infra.local.stack import LocalStack, StackOptions, free_port

EXAMPLE_SUITE = ROOT / "evals" / "suites" / "default"


@contextlib.contextmanager
def models() -> Iterator[dict[str, str]]:
    """The model server's environment: the caller's own, else the deterministic test server."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        yield {k: os.environ[k] for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL") if k in os.environ}
        return
    from tests.support.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(free_port()) as fake:
        print(
            f"no OPENAI_API_KEY / OPENAI_BASE_URL: using the deterministic test models at {fake.base_url}"
        )
        yield {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-fake"}


def publish_default_agent(api_url: str, key: str) -> str:
    """An agent whose version 1 is the config file's agent (an empty change)."""
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=api_url + PREFIX, headers=headers, timeout=15) as api:
        agent = api.post("/agents", json={"name": "default agent (make eval)"})
        agent.raise_for_status()
        agent_id = str(agent.json()["agent_id"])
        api.post(f"/agents/{agent_id}/versions", json={"config": {}}).raise_for_status()
    return agent_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.local", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mode", choices=["text", "audio"], default="text")
    parser.add_argument("--suite", type=Path, default=EXAMPLE_SUITE)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    with models() as model_env:
        os.environ.update(model_env)  # the runner's caller and judge, and text mode's agent
        options = StackOptions.on_free_ports(
            STATE_DIR / "eval-stack",
            worker_env=model_env,
            start_worker=args.mode == "audio",
            reaper_interval=0,
        )
        print(f"starting the local stack (logs in {options.run_dir}) ...")
        with LocalStack(options) as stack:
            key = stack.api_keys[0][0]
            agent_id = publish_default_agent(stack.api_url, key)
            return run_main(
                [
                    "run",
                    str(args.suite),
                    "--agent",
                    agent_id,
                    "--version",
                    "1",
                    "--mode",
                    args.mode,
                    "--repeat",
                    str(args.repeat),
                    "--api",
                    stack.api_url,
                    "--api-key",
                    key,
                ]
            )


if __name__ == "__main__":
    sys.exit(main())
