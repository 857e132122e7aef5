"""An ASGI app under uvicorn in a test-process thread, so moto's in-process mock serves it."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from infra.local.stack import HOST


class ServerThread(threading.Thread):
    def __init__(self, app: Any, port: int, name: str = "asgi-server") -> None:
        super().__init__(daemon=True, name=name)
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")
        )
        self.url = f"http://{HOST}:{port}"

    def run(self) -> None:
        self.server.run()

    def __enter__(self) -> ServerThread:
        self.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.is_alive():
                raise RuntimeError(f"{self.name} did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.join(timeout=10)
