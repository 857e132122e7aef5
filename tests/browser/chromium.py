"""Headless Debian chromium with a fake microphone, started by the test and driven over CDP."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_BIN"), *CHROMIUM_CANDIDATES):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


class Chromium:
    """One chromium process with its own profile; `cdp_url` is what `connect_over_cdp` takes."""

    def __init__(self, binary: str, workdir: Path, microphone_wav: Path) -> None:
        self.binary = binary
        self.profile = workdir / "chromium-profile"
        self.log = workdir / "chromium.log"
        self.microphone_wav = microphone_wav
        self.proc: subprocess.Popen[bytes] | None = None
        self.cdp_url = ""

    def args(self) -> list[str]:
        return [
            self.binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={self.microphone_wav}",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]

    def start(self, timeout: float = 30) -> None:
        self.profile.mkdir(parents=True, exist_ok=False)
        with self.log.open("ab") as log:
            # A session of its own: stop() ends chromium and every helper process it forks.
            self.proc = subprocess.Popen(
                self.args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        # With port 0 chromium picks a free port and writes it to DevToolsActivePort.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: {self.tail()}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if lines and lines[0].strip().isdigit():
                self.cdp_url = f"http://127.0.0.1:{lines[0].strip()}"
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"chromium did not open its DevTools port in {timeout:.0f} s: {self.tail()}"
        )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        # Helpers (zygote, renderers) may outlive the browser process: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
