"""Fixtures for the end-to-end tests: the whole local stack with the fake models, and its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from infra.local.stack import LocalStack
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.stack import API, stack_with_fake_models


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    with stack_with_fake_models(tmp_path_factory.mktemp("stack"), fake_openai) as running:
        yield running


@pytest.fixture
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(base_url=stack.api_url + API, headers=headers, timeout=10) as c:
        yield c
