"""Fixtures for the integration suite: workers started as subprocesses against the test LiveKit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.livekit import LiveKitServer
from tests.support.worker import Worker, start_worker_process

StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(livekit: LiveKitServer, tmp_path: Path) -> Iterator[StartWorker]:
    """`start_worker(mode, worker_yaml="max_jobs: 2", **env)`; every worker is killed after."""
    started: list[Worker] = []

    def start(mode: str, *, worker_yaml: str = "", **extra_env: str) -> Worker:
        worker = start_worker_process(livekit, tmp_path, mode, worker_yaml=worker_yaml, **extra_env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
