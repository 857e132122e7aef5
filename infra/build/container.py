"""Runs the worker image as a container on the host network, and reads what it logs."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.build.engine import Engine

# Passed by name (`--env NAME`), so values such as the API secret never appear in a command line.
FORWARDED_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OPENAI_API_KEY")


@dataclass
class WorkerContainer:
    engine: Engine
    name: str
    health_port: int
    started_at: float  # wall clock, just before the engine was asked to run it

    @classmethod
    def run(
        cls, engine: Engine, image: str, health_port: int, env: dict[str, str]
    ) -> WorkerContainer:
        """Starts the image detached; `env` holds LIVEKIT_URL / _API_KEY / _API_SECRET and more."""
        name = f"voice-worker-{uuid.uuid4().hex[:10]}"
        env = {**env, "OPENAGENTS_LIVEKIT_WORKER_PORT": str(health_port)}
        args = ["run", "--detach", "--name", name, "--network", "host"]
        for key in env:
            args += ["--env", key if key in FORWARDED_ENV else f"{key}={env[key]}"]
        started_at = time.time()
        subprocess.run(
            engine.command(*args, image),
            env={**os.environ, **engine.env, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        return cls(engine, name, health_port, started_at)

    def logs(self) -> str:
        out = subprocess.run(
            self.engine.command("logs", self.name),
            env={**os.environ, **self.engine.env},
            capture_output=True,
            text=True,
        )
        return out.stdout + out.stderr

    def messages(self) -> list[dict[str, Any]]:
        """The worker's JSON log records, in order."""
        records = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def wait_for_message(self, message: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first log record whose message starts with `message`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.messages():
                if str(record.get("message", "")).startswith(message):
                    return record
            if not self.running():
                break
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} never logged {message!r}:\n{self.logs()[-4000:]}")

    def seconds_to(self, message: str, timeout: float = 120.0) -> float:
        """Seconds from the run command to the log record `message`, by the record's timestamp."""
        stamp = self.wait_for_message(message, timeout)["timestamp"]
        return datetime.fromisoformat(stamp).timestamp() - self.started_at

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.engine.command("exec", self.name, *command),
            env={**os.environ, **self.engine.env},
            capture_output=True,
            text=True,
        )

    def running(self) -> bool:
        state = self.engine.run(
            "inspect", "--format", "{{.State.Running}}", self.name, capture=True, check=False
        )
        return state.strip() == "true"

    def signal(self, name: str = "TERM") -> None:
        self.engine.run("kill", "--signal", name, self.name, capture=True)

    def wait_exit(self, timeout: float) -> int:
        """The exit code once the container stops; TimeoutError if it runs past `timeout`."""
        try:
            out = self.engine.run("wait", self.name, capture=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"{self.name} still running after {timeout} s") from exc
        return int(out.strip().splitlines()[-1])

    def remove(self) -> None:
        self.engine.run("rm", "--force", self.name, capture=True, check=False)
