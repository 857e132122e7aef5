"""Prints the reply latency a caller hears on the local stack with the fake OpenAI server.

One call through the whole stack (API, LiveKit, webhooks, worker), the caller asking `--turns`
questions. For each turn: the time from the end of the caller's speech to the first agent audio
frame the caller receives, beside the worker's own per-turn figures from the session report
(end-of-utterance delay, LLM time to first token, TTS time to first byte, end to end). The fake
models answer at once, so this is the pipeline's own overhead (VAD, endpointing, WebRTC, decode).

    .venv/bin/python bench/e2e_latency.py [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.stack import LocalStack, free_port  # noqa: E402
from tests.support.caller import Caller, speech, wait_until  # noqa: E402
from tests.support.fake_openai import QUESTION, FakeOpenAIServer  # noqa: E402
from tests.support.stack import API, fake_models_options, session_report  # noqa: E402


async def call(stack: LocalStack, turns: int) -> tuple[str, list[float]]:
    headers = {"x-api-key": stack.api_keys[0][0]}
    async with httpx.AsyncClient(base_url=stack.api_url + API, headers=headers, timeout=10) as api:
        resp = await api.post(
            "/session", json={"agent_type": "single_agent", "initial_greeting": True}
        )
        resp.raise_for_status()
        created = resp.json()
    caller = Caller()
    joined = time.monotonic()
    await caller.join(created["url"], created["token"])
    heard: list[float] = []
    try:
        await caller.wait_for_voice(after=joined, timeout=60)
        await caller.wait_for_quiet(quiet=1.0, timeout=60)
        question = speech(QUESTION)
        for _ in range(turns):
            spoke = await caller.say(question)
            heard.append(await caller.wait_for_voice(after=spoke, timeout=60) - spoke)
            await caller.wait_for_quiet(quiet=1.0, timeout=60)
    finally:
        await caller.leave()
    return created["session_id"], heard


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<38} n/a"
    return (
        f"  {name:<38} median {statistics.median(values):7.0f} ms   "
        f"min {min(values):7.0f}   max {max(values):7.0f}   (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as run_dir,
        FakeOpenAIServer(free_port()) as fake,
        LocalStack(fake_models_options(Path(run_dir), fake)) as stack,
    ):
        session_id, heard = asyncio.run(call(stack, args.turns))

        async def report_written() -> None:
            await wait_until(lambda: session_report(stack, session_id) is not None, 60, "report")

        asyncio.run(report_written())
        report = session_report(stack, session_id) or {}
    answers = [t for t in report.get("turns", []) if t.get("end_of_utterance_delay_ms") is not None]
    print(f"e2e latency, {len(heard)} turns, fake models (no provider time):")
    print(summary("caller: speech end -> first agent audio", [h * 1000 for h in heard]))
    for key, name in (
        ("end_of_utterance_delay_ms", "worker: end of utterance delay"),
        ("llm_ttft_ms", "worker: LLM time to first token"),
        ("tts_ttfb_ms", "worker: TTS time to first byte"),
        ("end_to_end_ms", "worker: end to end"),
    ):
        print(summary(name, [t[key] for t in answers if t.get(key) is not None]))


if __name__ == "__main__":
    main()
