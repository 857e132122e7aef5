"""The worker image itself: it runs the locked packages as non-root, serves a call and drains."""

from __future__ import annotations

import json
import re
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from livekit import api

from infra.build.container import WorkerContainer
from infra.build.engine import ROOT
from tests.support.dispatch import AGENT_NAME, agent_in_room, dispatch_call
from tests.support.livekit import LiveKitServer

STOP_TIMEOUT = 120  # the ECS task's stopTimeout: SIGKILL follows SIGTERM after this


@pytest.fixture(scope="module")
def worker(start_container: Callable[[], WorkerContainer]) -> WorkerContainer:
    container = start_container()
    container.wait_for_message("registered worker", timeout=120)
    return container


def http_get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.read().decode()


def locked_packages(lock: str = "locks/worker.txt") -> dict[str, str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", text, re.M))


def test_the_worker_registers_and_answers_its_health_endpoints(worker: WorkerContainer):
    assert http_get(worker.health_port, "/") == (200, "OK")
    status, body = http_get(worker.health_port, "/worker")
    assert status == 200
    assert json.loads(body)["agent_name"] == AGENT_NAME


def archived_config(archive: Path) -> dict[str, Any]:
    """The image config inside a `docker save` archive."""
    with tarfile.open(archive) as tar:
        (manifest,) = json.load(tar.extractfile("manifest.json"))
        return json.load(tar.extractfile(manifest["Config"]))


def test_the_archive_is_the_tested_image_and_keeps_its_healthcheck(
    worker_image: str, worker_archive: Path, worker: WorkerContainer
):
    config = archived_config(worker_archive)
    with tarfile.open(worker_archive) as tar:
        (manifest,) = json.load(tar.extractfile("manifest.json"))
    assert worker_image.removeprefix("sha256:") in manifest["Config"]
    assert config["config"]["User"] == "agent"
    check = config["config"]["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    # The image's own health check, run in the live container, passes.
    done = worker.exec(*check[1:])
    assert done.returncode == 0, done.stderr


def test_the_worker_runs_as_a_non_root_user(worker: WorkerContainer):
    done = worker.exec("id", "-u")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 10001


def test_the_image_holds_exactly_the_worker_locks_packages(worker: WorkerContainer):
    # pip itself is not in the image: the venv's distributions, as pip freeze would list them.
    listing = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    done = worker.exec("python", "-c", listing)
    assert done.returncode == 0, done.stderr
    installed = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in json.loads(done.stdout).items()
    }
    assert installed == locked_packages()


def test_the_aws_clients_the_worker_uses_still_load_from_the_trimmed_sdk(worker: WorkerContainer):
    clients = "import boto3; s = boto3.session.Session(region_name='us-east-1'); "
    clients += "[s.client(n) for n in ('s3', 'ssm', 'sts')]"
    done = worker.exec("python", "-c", clients)
    assert done.returncode == 0, done.stderr


async def test_the_worker_takes_a_dispatched_call(worker: WorkerContainer, livekit: LiveKitServer):
    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        _, room = await dispatch_call(lk, prefix="voice-image")
        assert await agent_in_room(lk, room), worker.logs()[-4000:]
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    finally:
        await lk.aclose()


async def test_sigterm_drains_the_running_call_then_exits_zero(
    start_container: Callable[[], WorkerContainer], livekit: LiveKitServer
):
    container = start_container()
    container.wait_for_message("registered worker", timeout=120)
    lk = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        _, room = await dispatch_call(lk, prefix="voice-image")
        assert await agent_in_room(lk, room), container.logs()[-4000:]

        container.signal("TERM")
        container.wait_for_message("draining worker")
        # A live call keeps the worker, and its agent in the room, going through the drain.
        assert container.running()
        assert await agent_in_room(lk, room, timeout=1.0)

        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        assert container.wait_exit(timeout=STOP_TIMEOUT - 10) == 0
    finally:
        await lk.aclose()
    messages = [m.get("message") for m in container.messages()]
    assert "shutting down worker" in messages
