"""The container engine on this machine: Docker where a daemon answers, otherwise podman as root."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build"


class NoEngine(RuntimeError):
    """Neither Docker nor podman can build and run containers here (the message says why)."""


@dataclass(frozen=True)
class Engine:
    name: str  # "docker" | "podman"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_podman(self) -> bool:
        return self.name == "podman"

    def command(self, *args: str) -> list[str]:
        return [self.name, *args]

    def run(self, *args: str, check: bool = True, capture: bool = False, **kwargs: Any) -> str:
        done = subprocess.run(
            self.command(*args),
            env={**os.environ, **self.env},
            check=check,
            text=True,
            capture_output=capture,
            **kwargs,
        )
        return done.stdout if capture else ""

    def image_id(self, ref: str) -> str | None:
        out = subprocess.run(
            self.command("image", "inspect", "--format", "{{.Id}}", ref),
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
        )
        return (out.stdout.strip() or None) if out.returncode == 0 else None


def podman_conf(directory: Path = BUILD_DIR / "podman") -> Path:
    """Writes the containers.conf podman needs on these machines and returns its path.

    runc, because crun fails on this cgroup layout; cgroupfs and a file event log, because there is
    no systemd; ulimits no higher than the host's hard limit, which podman would refuse.
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    conf = directory / "containers.conf"
    directory.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n',
        encoding="utf-8",
    )
    return conf


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def find_engine() -> Engine:
    """Docker when its daemon answers; podman as root otherwise; NoEngine saying why not."""
    if docker_answers():
        return Engine("docker", {"DOCKER_BUILDKIT": "1"})
    if shutil.which("podman") is None:
        raise NoEngine("no Docker daemon answers and podman is not installed (make image-deps)")
    if os.geteuid() != 0:
        raise NoEngine("no Docker daemon answers and podman runs here only as root")
    engine = Engine("podman", {"CONTAINERS_CONF": str(podman_conf())})
    info = subprocess.run(
        engine.command("info"), env={**os.environ, **engine.env}, capture_output=True, text=True
    )
    if info.returncode != 0:
        raise NoEngine(f"podman cannot run here: {info.stderr.strip()[-500:]}")
    return engine
