"""The LLM name redactor against the deterministic model server: names out, and fail closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.stack import free_port
from tests.support.fake_openai import REDACTION_SCHEMA, FakeOpenAI, FakeOpenAIServer
from voice.config.analysis import NameRedactor
from voice.name_redaction import NameRedactionFailed, redact_names
from voice.report import TranscriptEntry

ENTRIES = [
    TranscriptEntry(role="user", text="Hi, this is Dana Lee, my number is [phone].", at="t1"),
    TranscriptEntry(role="assistant", text="Thanks Dana, how can I help?", at="t2"),
]


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(free_port(), FakeOpenAI()) as server:
        yield server


def test_names_are_replaced_and_everything_else_kept(model: FakeOpenAIServer) -> None:
    redactor = NameRedactor(enabled=True, base_url=model.base_url, model="redactor-1")
    kept = redact_names(ENTRIES, redactor, api_key="test")
    assert [e.text for e in kept] == [
        "Hi, this is [name], my number is [phone].",
        "Thanks [name], how can I help?",
    ]
    assert [(e.role, e.at) for e in kept] == [("user", "t1"), ("assistant", "t2")]
    request = model.fake.of("/v1/chat/completions")[-1].body
    assert request["model"] == "redactor-1"
    assert request["response_format"]["json_schema"]["name"] == REDACTION_SCHEMA


def test_a_redactor_that_does_not_answer_fails_closed() -> None:
    gone = NameRedactor(enabled=True, base_url=f"http://127.0.0.1:{free_port()}/v1", max_attempts=2)
    with pytest.raises(NameRedactionFailed) as err:
        redact_names(ENTRIES, gone, api_key="test")
    assert "Dana" not in str(err.value)
    assert "2 attempt" in str(err.value)
