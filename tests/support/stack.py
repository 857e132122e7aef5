"""The whole local stack on free ports, its worker talking to the fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from infra.local.stack import LocalStack, StackOptions, find_livekit_server
from tests.support.fake_openai import FakeOpenAIServer


@contextmanager
def stack_with_fake_models(
    run_dir: Path, fake: FakeOpenAIServer, **overrides: object
) -> Iterator[LocalStack]:
    """`overrides` replace StackOptions fields (e.g. `redis_address` for SIP)."""
    if find_livekit_server() is None:
        pytest.skip("no livekit-server binary: run `make livekit-server` (or put one on PATH)")
    options = StackOptions.on_free_ports(
        run_dir,
        worker_env={"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-fake"},
        # The webhooks must do the work on their own here: no reaper to paper over a lost event.
        reaper_interval=0,
        **overrides,  # type: ignore[arg-type]
    )
    with LocalStack(options) as running:
        yield running
