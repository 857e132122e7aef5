"""What an integrating team sees on the real local stack: per-call instructions reaching the LLM,
signed webhooks (a failing receiver retried, duplicates under one id), the transcript, and a
recording of both sides that decodes."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from infra.local.stack import LocalStack
from tests.support.caller import Caller, speech, wait_until
from tests.support.fake_openai import ANSWER, QUESTION, FakeOpenAIServer
from tests.support.stack import log_tail, poll_session, session_report, stack_with_webhooks
from tests.support.webhook_receiver import ReceiverServer, WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.livekit]

WAIT = 60.0
SECRET = "whsec-e2e"
GREETING = "Hello {{name}}, thanks for calling about order {{order}}."
INSTRUCTIONS = "The caller is {{name}}. They ask about order {{order}}; it shipped on Monday."
VARIABLES = {"name": "Dana", "order": "A-17"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer(WebhookReceiver(secret=SECRET, fail_first=1)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalStack]:
    with stack_with_webhooks(
        tmp_path_factory.mktemp("stack"),
        fake_openai,
        receiver.hook_url,
        SECRET,
        recording={"enabled": True},
    ) as running:
        yield running


def decode_stereo(data: bytes) -> tuple[np.ndarray, int]:
    """The recording as float samples, shape (channels, n), and its sample rate."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        chunks = [f.to_ndarray() for f in container.decode(stream)]
    samples = np.concatenate(chunks, axis=1)
    if samples.shape[0] == 1 and stream.layout.nb_channels == 2:  # packed: L R L R ...
        samples = samples.reshape(-1, 2).T
    return samples.astype(np.float64), rate


def loud_windows(channel: np.ndarray, rate: int) -> np.ndarray:
    """Per 100 ms window, whether it holds speech (RMS well above the silence of an idle track)."""
    window = rate // 10
    n = channel.size // window
    frames = channel[: n * window].reshape(n, window)
    # Decoded Opus is float, full scale 1.0 (peaks may overshoot it slightly): int16 units here.
    rms = np.sqrt(((frames * 32768.0) ** 2).mean(axis=1))
    return rms > 200.0


async def test_a_recorded_call_with_per_call_instructions_reaches_the_customer_backend(
    stack: LocalStack,
    api: httpx.AsyncClient,
    fake_openai: FakeOpenAIServer,
    receiver: ReceiverServer,
) -> None:
    resp = await api.post(
        "/session",
        json={
            "agent_type": "single_agent",
            "initial_greeting": True,
            "instructions": INSTRUCTIONS,
            "greeting": GREETING,
            "variables": VARIABLES,
            "language": "en",
            "record": True,
        },
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    session_id = created["session_id"]
    hooks = receiver.receiver
    caller = Caller()
    joined_at = time.monotonic()
    await caller.join(created["url"], created["token"])
    try:
        await poll_session(api, session_id, lambda s: s["agent_joined"], WAIT, "the agent")
        await caller.wait_for_voice(after=joined_at, timeout=WAIT)
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
        spoke_at = await caller.say(speech(QUESTION))
        await caller.wait_for_voice(after=spoke_at, timeout=WAIT)
        await wait_until(
            lambda: ANSWER in " ".join(caller.said_by(caller.agents_joined[0])),
            WAIT,
            "the answer",
        )
        await caller.wait_for_quiet(quiet=1.0, timeout=WAIT)
        agent_said = " ".join(caller.said_by(caller.agents_joined[0]))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'worker', 'api')}") from exc
    finally:
        await caller.leave()

    # The per-call greeting, filled in, is what the agent said first.
    assert "Hello Dana, thanks for calling about order A-17." in agent_said
    # The per-call instructions, filled in, reached the LLM's system prompt.
    chats = fake_openai.fake.of("/v1/chat/completions")
    assert chats
    system = " ".join(
        str(m.get("content"))
        for m in chats[-1].body["messages"]
        if m["role"] in ("system", "developer")
    )
    assert "The caller is Dana. They ask about order A-17; it shipped on Monday." in system
    assert "{{" not in system

    try:
        await wait_until(
            lambda: any(e["type"] == "session.ended" for e in hooks.accepted()),
            WAIT * 2,
            "the session.ended webhook",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(stack, 'outbox', 'worker', 'api')}") from exc

    # Every delivery signed; the first (refused by the receiver) retried under the same id.
    assert all(d.signature_ok for d in hooks.deliveries)
    started = hooks.events("session.started")
    assert len(started) >= 2 and len({e["id"] for e in started}) == 1
    assert [e["type"] for e in hooks.accepted()] == ["session.started", "session.ended"]

    ended = next(e for e in hooks.accepted() if e["type"] == "session.ended")
    assert ended["session"]["session_id"] == session_id
    assert ended["session"]["status"] == "ended"
    report: dict[str, Any] = ended["report"]
    lines = [(t["role"], t["text"].strip()) for t in report["transcript"]]
    assert lines == [
        ("assistant", "Hello Dana, thanks for calling about order A-17."),
        ("user", QUESTION),
        ("assistant", ANSWER),
    ], lines
    assert report["usage"]["tts_characters"] > 0
    assert report["recording_url"]

    transcript = await api.get(f"/session/{session_id}/transcript")
    assert transcript.status_code == 200, transcript.text
    assert [t["text"].strip() for t in transcript.json()["transcript"]] == [t for _, t in lines]

    shown = (await api.get(f"/session/{session_id}")).json()
    async with httpx.AsyncClient(timeout=10) as plain:
        audio = await plain.get(shown["recording_url"])
    assert audio.status_code == 200
    samples, rate = decode_stereo(audio.content)
    seconds = samples.shape[1] / rate
    worker_report = session_report(stack, session_id)
    assert worker_report is not None
    call_seconds = float(worker_report["duration_s"])
    print(f"\nrecording {seconds:.1f} s, call {call_seconds:.1f} s, {len(audio.content)} bytes")
    assert samples.shape[0] == 2
    assert abs(seconds - call_seconds) <= max(3.0, 0.25 * call_seconds)
    caller_loud, agent_loud = (loud_windows(ch, rate) for ch in samples)
    print(
        f"speech: caller {caller_loud.sum()} / agent {agent_loud.sum()} of {caller_loud.size} x 0.1 s"
    )
    # Both sides are there, each speaking while the other is silent.
    assert (caller_loud & ~agent_loud).sum() >= 5
    assert (agent_loud & ~caller_loud).sum() >= 5
