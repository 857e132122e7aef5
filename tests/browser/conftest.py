"""Fixtures for the browser test: a fake microphone, the fake OpenAI server, the local stack, chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from infra.local.stack import LocalStack
from tests.browser.chromium import Chromium, find_chromium
from tests.support.config_files import config_with
from tests.support.fake_openai import QUESTION, FakeOpenAIServer, espeak_samples, to_wav
from tests.support.stack import stack_with_fake_models
from tests.support.tools import missing_tool
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[2]
LIVEKIT_CLIENT = ROOT / "playground" / "node_modules" / "livekit-client" / "dist"
MIC_RATE = 48_000
WEBHOOK_SECRET = "whsec-browser"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-run")


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        missing_tool("no chromium: run `make browser-deps` (Debian's chromium package)")
    return binary


@pytest.fixture(scope="module")
def playground_built() -> None:
    if not (LIVEKIT_CLIENT / "livekit-client.umd.js").is_file():
        missing_tool("the playground's livekit-client is not installed: run `make playground`")


@pytest.fixture(scope="module")
def microphone_wav(run_dir: Path) -> Path:
    """The caller's question as espeak-ng speech, padded with silence so each loop is one turn."""
    if shutil.which("espeak-ng") is None:
        missing_tool("no espeak-ng: the fake microphone needs speech to play")
    speech = espeak_samples(QUESTION, MIC_RATE)
    assert speech is not None
    silence = np.zeros(MIC_RATE, dtype=np.int16)
    # Chromium loops the file: 1 s lead-in, the question, then 5 s of quiet for the agent's turn.
    samples = np.concatenate([silence, speech, *([silence] * 5)])
    path = run_dir / "microphone.wav"
    path.write_bytes(to_wav(samples, MIC_RATE))
    return path


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    """The customer's webhook endpoint; it refuses the first delivery, so the console shows a retry."""
    with ReceiverServer(WebhookReceiver(secret=WEBHOOK_SECRET, fail_first=1)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    run_dir: Path,
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
    playground_built: None,
) -> Iterator[LocalStack]:
    # Recording allowed, so the page can ask for it and play it back after the call.
    config = config_with(
        run_dir / "voice.yaml",
        {"recording": {"enabled": True}, "webhooks": {"url": receiver.hook_url}},
    )
    with stack_with_fake_models(
        run_dir / "stack",
        fake_openai,
        config_uri=str(config),
        extra_env={"VOICE_WEBHOOK_SECRET": WEBHOOK_SECRET, "WEBHOOK_RETRY_BASE_SECONDS": "1"},
    ) as running:
        yield running


@pytest.fixture
def browser(chromium_binary: str, microphone_wav: Path, tmp_path: Path) -> Iterator[Browser]:
    """A playwright Browser attached over CDP to a chromium this fixture starts and stops."""
    try:
        from playwright import sync_api
    except ImportError:
        missing_tool("no playwright: `make install` installs it from the dev lock")
    chromium = Chromium(chromium_binary, tmp_path, microphone_wav)
    chromium.start()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(chromium.cdp_url, timeout=30_000)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        chromium.stop()
