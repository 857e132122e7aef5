"""Starts a real livekit-server on free ports for integration tests, or skips when there is none."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "devkey"
API_SECRET = "secret"


def find_livekit_server() -> str | None:
    """$LIVEKIT_SERVER_BIN, then the project's .bin/livekit-server, then PATH."""
    candidates = [os.environ.get("LIVEKIT_SERVER_BIN"), str(REPO / ".bin" / "livekit-server")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("livekit-server")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveKit:
    url: str
    http_url: str
    api_key: str = API_KEY
    api_secret: str = API_SECRET


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"livekit-server exited early:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"livekit-server did not listen on {port}:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKit]:
    binary = find_livekit_server()
    if binary is None:
        pytest.skip(
            "no livekit-server binary: set LIVEKIT_SERVER_BIN, install .bin/livekit-server "
            "or put livekit-server on PATH"
        )
    workdir = tmp_path_factory.mktemp("livekit")
    port, tcp_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    config = workdir / "livekit.yaml"
    config.write_text(
        f"port: {port}\n"
        "rtc:\n"
        f"  tcp_port: {tcp_port}\n"
        f"  udp_port: {udp_port}\n"
        "  use_external_ip: false\n"
        f"keys:\n  {API_KEY}: {API_SECRET}\n"
        "logging:\n  level: warn\n"
    )
    log = workdir / "livekit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--dev", "--bind", "127.0.0.1", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, proc, log, timeout=20)
        yield LiveKit(url=f"ws://127.0.0.1:{port}", http_url=f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
