"""Prints how soon a phone calling in over SIP hears the agent, on the local stack with fake models.

For each of `--calls` calls to the inbound number: the offset, in the phone's own recording (which
starts when the call's audio starts), of the first 20 ms of speech, i.e. answer to greeting
heard, through the SIP service, LiveKit, agent dispatch, the worker and instant fake models.

    .venv/bin/python bench/sip_answer_latency.py [--calls 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.local.stack import free_port  # noqa: E402
from tests.support.fake_openai import FakeOpenAIServer  # noqa: E402
from tests.support.phone import first_speech_at, wait_until_heard  # noqa: E402
from tests.support.phone_stack import PhoneStack, phone_stack_with_fake_models  # noqa: E402

WAIT = 60.0


def one_call(phones: PhoneStack, run_dir: Path, n: int, codec: str | None) -> float:
    name = f"bench{n}"
    recording = run_dir / f"{name}.wav"
    phone = phones.call_in(run_dir, name, codec)
    try:
        phone.wait_for("media", WAIT)
        wait_until_heard(recording, 1.0, WAIT)
        phone.send("hangup")
        phone.wait_for("recorded", WAIT)
    finally:
        phone.stop()
    at = first_speech_at(recording)
    if at is None:
        raise RuntimeError(f"call {n}: the finished recording holds no speech")
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--codec", help="restrict the phone to one codec, e.g. PCMU/8000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(free_port()) as fake:
        run_dir = Path(tmp)
        with phone_stack_with_fake_models(run_dir, fake) as phones:
            heard = [one_call(phones, run_dir, n, args.codec) for n in range(args.calls)]
    median = statistics.median(heard)
    print(
        f"answer -> first agent speech heard on the phone, {len(heard)} calls: "
        f"median {median * 1000:.0f} ms ({min(heard) * 1000:.0f}-{max(heard) * 1000:.0f})"
    )
    seconds = [round(h, 3) for h in heard]
    print(
        json.dumps(
            {"answer_to_greeting_s": seconds, "median_s": round(median, 3), "codec": args.codec}
        )
    )


if __name__ == "__main__":
    main()
