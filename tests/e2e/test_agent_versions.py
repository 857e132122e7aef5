"""Agent versions on the real local stack: a caller pinned to a version hears that version, a
version published while the worker runs is served without a restart, the report and the
customer webhook say which version ran, and a canary whose model server fails is rolled back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.local.stack import LocalStack, free_port
from tests.support.caller import Caller, wait_until
from tests.support.fake_openai import FakeOpenAI, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, session_report, stack_with_webhooks
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
SECRET = "whsec-versions"


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalStack]:
    # One finished session a side is enough to judge a canary here.
    with stack_with_webhooks(
        tmp_path_factory.mktemp("stack"),
        fake_openai,
        receiver.hook_url,
        SECRET,
        rollout={"min_sessions": 1},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def broken_models() -> Iterator[FakeOpenAIServer]:
    """A model server whose every chat completion fails."""
    with FakeOpenAIServer(free_port(), FakeOpenAI(fail_chat=True)) as server:
        yield server


def version_config(n: int) -> dict[str, Any]:
    return {
        "agent": {
            "type": "single_agent",
            "instructions": f"You are agent version {n}.",
            "greeting": f'Say exactly: "Welcome, this is version {n}."',
        }
    }


async def publish(api: httpx.AsyncClient, agent_id: str, n: int) -> None:
    r = await api.post(f"/agents/{agent_id}/versions", json={"config": version_config(n)})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == n


async def greeting_heard(
    stack: LocalStack, api: httpx.AsyncClient, agent_id: str, version: int, words: str = "version"
) -> tuple[str, str]:
    """(session id, what the agent said) for a caller pinned to `version`, once it has said
    `words`."""
    resp = await api.post(
        "/session",
        json={"agent_id": agent_id, "agent_version": version, "end_user_id": f"pinned-{version}"},
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    caller = Caller()
    joined_at = time.monotonic()
    await caller.join(created["url"], created["token"])
    try:
        await poll_session(api, created["session_id"], lambda s: s["agent_joined"], WAIT, "agent")
        await caller.wait_for_voice(after=joined_at, timeout=WAIT)
        await wait_until(
            lambda: words in " ".join(caller.said_by(caller.agents_joined[0])),
            WAIT,
            f"the agent to say {words!r}",
        )
        said = " ".join(caller.said_by(caller.agents_joined[0]))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'worker', 'api')}") from exc
    finally:
        await caller.leave()
    return created["session_id"], said


async def test_each_pinned_caller_hears_its_version_also_one_published_after_the_worker_started(
    stack: LocalStack,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
) -> None:
    agent_id = (await api.post("/agents", json={"name": "front desk"})).json()["agent_id"]
    # Every version here is published after the worker started; version 3 after it has served
    # (and cached) the other two.
    for n in (1, 2):
        await publish(api, agent_id, n)
    sessions = {}
    for n in (1, 2):
        sessions[n], said = await greeting_heard(stack, api, agent_id, n)
        assert f"Welcome, this is version {n}." in said, said
        assert f"version {3 - n}" not in said
    await publish(api, agent_id, 3)
    sessions[3], said = await greeting_heard(stack, api, agent_id, 3)
    assert "Welcome, this is version 3." in said, said
    # The version's instructions were the system prompt of its call.
    chats = fake_openai.fake.of("/v1/chat/completions")
    assert any(
        "You are agent version 3." in str(m.get("content"))
        for m in chats[-1].body["messages"]
        if m["role"] in ("system", "developer")
    )

    for n, session_id in sessions.items():
        await wait_until(
            lambda sid=session_id: session_report(stack, sid) is not None, WAIT, "the report"
        )
        report = session_report(stack, session_id)
        assert report is not None
        assert (report["agent_id"], report["agent_version"]) == (agent_id, n)
        shown = (await api.get(f"/session/{session_id}")).json()
        assert (shown["agent_id"], shown["agent_version"]) == (agent_id, n)

    hooks = receiver.receiver

    def ended(session_id: str) -> dict[str, Any] | None:
        return next(
            (
                e
                for e in hooks.accepted()
                if e["type"] == "session.ended" and e["session"]["session_id"] == session_id
            ),
            None,
        )

    for n, session_id in sessions.items():
        try:
            await wait_until(lambda sid=session_id: ended(sid) is not None, WAIT, "session.ended")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_tail(stack, 'outbox', 'api')}") from exc
        event = ended(session_id)
        assert event is not None
        assert (event["session"]["agent_id"], event["session"]["agent_version"]) == (agent_id, n)


async def test_a_canary_whose_model_server_fails_is_rolled_back_to_the_baseline(
    stack: LocalStack,
    api: httpx.AsyncClient,
    receiver: ReceiverServer,
    broken_models: FakeOpenAIServer,
) -> None:
    agent_id = (await api.post("/agents", json={"name": "canary"})).json()["agent_id"]
    await publish(api, agent_id, 1)
    broken = version_config(2)
    broken["providers"] = {"openai": {"llm": {"base_url": broken_models.base_url}}}
    r = await api.post(f"/agents/{agent_id}/versions", json={"config": broken})
    assert r.status_code == 201, r.text
    split = {"traffic": [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}]}
    r = await api.put(f"/agents/{agent_id}/traffic", json=split, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text

    good, _ = await greeting_heard(stack, api, agent_id, 1)
    # The canary's LLM fails: the caller hears the apology instead of a greeting.
    bad, _ = await greeting_heard(stack, api, agent_id, 2, words="problem on my side")
    for session_id in (good, bad):
        await wait_until(
            lambda sid=session_id: session_report(stack, sid) is not None, WAIT, "the report"
        )
    assert session_report(stack, bad)["agent_errors"] >= 1  # type: ignore[index]
    assert session_report(stack, good)["agent_errors"] == 0  # type: ignore[index]
    for session_id in (good, bad):
        await poll_session(
            api, session_id, lambda s: s["status"] not in ("pending", "active"), WAIT, "the end"
        )

    printed = stack.judge_canaries()
    assert agent_id in printed, printed
    traffic = (await api.get(f"/agents/{agent_id}/traffic")).json()
    assert traffic["traffic"] == [{"version": 1, "percent": 100}]
    assert traffic["action"] == "auto_rollback"
    assert "version 2: 1 of 1 sessions failed" in traffic["reason"]
    try:
        await wait_until(
            lambda: bool(receiver.receiver.events("agent.rolled_back")), WAIT, "agent.rolled_back"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'outbox')}") from exc
    [event] = receiver.receiver.events("agent.rolled_back")
    assert event["traffic"]["agent_id"] == agent_id
    assert event["traffic"]["revision"] == traffic["revision"]
