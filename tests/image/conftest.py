"""The worker image, built (layer-cached) by the engine this machine has, and containers of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.build.container import WorkerContainer
from infra.build.engine import Engine, NoEngine, find_engine
from infra.build.image import ARCHIVE, IMAGE, build_image, write_archive
from infra.local.stack import free_port
from tests.support.livekit import LiveKitServer
from tests.support.tools import missing_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/image/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.image)


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return find_engine()
    except NoEngine as exc:
        missing_tool(f"no container engine can run the worker image here: {exc}")


@pytest.fixture(scope="session")
def worker_image(engine: Engine) -> str:
    """The image id, built from the current sources: a no-op when `make image` already ran."""
    return build_image(engine, IMAGE, quiet=True)


@pytest.fixture(scope="session")
def worker_archive(engine: Engine, worker_image: str) -> Path:
    """build/voice-worker.tar holding that image (rewritten only when the image changed)."""
    write_archive(engine, IMAGE, worker_image, ARCHIVE)
    return ARCHIVE


@pytest.fixture(scope="module")
def start_container(
    engine: Engine, worker_image: str, livekit: LiveKitServer
) -> Iterator[Callable[[], WorkerContainer]]:
    started: list[WorkerContainer] = []

    def start() -> WorkerContainer:
        container = WorkerContainer.run(
            engine,
            IMAGE,
            free_port(),
            {
                "LIVEKIT_URL": livekit.url,
                "LIVEKIT_API_KEY": livekit.api_key,
                "LIVEKIT_API_SECRET": livekit.api_secret,
                "OPENAI_API_KEY": "sk-test",
                # Nothing is said in these calls; a provider call would fail fast, not reach out.
                "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            },
        )
        started.append(container)
        return container

    yield start
    for container in started:
        container.remove()
