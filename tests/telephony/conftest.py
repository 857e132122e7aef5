"""Fixtures for the telephony tests: one phone-capable stack per module, a LiveKit API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api

from tests.support.fake_openai import FakeOpenAIServer
from tests.support.phone_stack import PhoneStack, phone_stack_with_fake_models


@pytest.fixture(scope="module")
def phone_stack(
    fake_openai: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PhoneStack]:
    with phone_stack_with_fake_models(tmp_path_factory.mktemp("phone-stack"), fake_openai) as ps:
        yield ps


@pytest.fixture
async def lk(phone_stack: PhoneStack) -> AsyncIterator[api.LiveKitAPI]:
    async with phone_stack.livekit_api() as client:
        yield client
