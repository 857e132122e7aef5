"""Prints the one-way audio delay through LiveKit on this machine, with no agent in the path.

Two participants in one room on the local livekit-server: one speaks espeak-ng speech the way the
test caller does (10 ms frames into an `AudioSource`), the other listens the way the caller
hears the agent. For each utterance: the time from the speaker handing its last loud frame to
the SDK until the listener receives it (what delays the agent's end-of-speech detection), and
the same for the first loud frame (what delays the caller hearing the agent's first word).
Caller-heard latency minus the worker's own end-to-end figure is two of these paths.

    .venv/bin/python bench/transport.py [--runs 10] [--queue-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from livekit import api, rtc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.caller import FRAME, RATE, VOICE_RMS, speech  # noqa: E402
from tests.support.fake_openai import QUESTION  # noqa: E402
from tests.support.livekit import start_livekit_server, stop_process  # noqa: E402


def token(server_key: str, secret: str, identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(server_key, secret).with_identity(identity).with_grants(grants).to_jwt()


async def measure(
    url: str, key: str, secret: str, runs: int, queue_ms: int
) -> list[tuple[float, float]]:
    room_name = "transport-bench"
    speaker, listener = rtc.Room(), rtc.Room()
    heard: list[tuple[float, float]] = []
    tasks: list[asyncio.Task[None]] = []

    async def listen(track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        async for ev in stream:
            samples = np.frombuffer(ev.frame.data, dtype=np.int16).astype(np.float64)
            heard.append((time.monotonic(), float(np.sqrt(np.mean(samples**2)))))

    def on_track(track: rtc.Track, *_: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            tasks.append(asyncio.create_task(listen(track)))

    listener.on("track_subscribed", on_track)
    await listener.connect(url, token(key, secret, "listener", room_name))
    await speaker.connect(url, token(key, secret, "speaker", room_name))
    source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_ms)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await speaker.local_participant.publish_track(track, options)

    utterance = speech(QUESTION)
    silence = np.zeros(RATE, dtype=np.int16)  # 1 s between utterances
    results: list[tuple[float, float]] = []
    for _ in range(runs + 1):  # the first utterance warms the path up and is not counted
        first_sent = last_sent = 0.0
        for i, samples in enumerate((silence, utterance, silence)):
            for pos in range(0, samples.size, FRAME):
                chunk = np.pad(
                    samples[pos : pos + FRAME], (0, max(0, FRAME - samples[pos : pos + FRAME].size))
                )
                loud = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) >= VOICE_RMS
                if i == 1 and loud:
                    last_sent = time.monotonic()
                    first_sent = first_sent or last_sent
                await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))
        onset = next(t for t, rms in heard if t >= first_sent and rms >= VOICE_RMS)
        offset = max(t for t, rms in heard if rms >= VOICE_RMS)
        results.append(((onset - first_sent) * 1000, (offset - last_sent) * 1000))
        heard.clear()
    for task in tasks:
        task.cancel()
    await speaker.disconnect()
    await listener.disconnect()
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--queue-ms", type=int, default=100, help="the speaker's AudioSource queue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_livekit_server(Path(tmp))
        try:
            results = asyncio.run(
                measure(server.url, server.api_key, server.api_secret, args.runs, args.queue_ms)
            )
        finally:
            stop_process(server.process)
    onsets = [r[0] for r in results]
    offsets = [r[1] for r in results]
    print(
        f"one-way audio through LiveKit, {len(results)} utterances, speaker queue {args.queue_ms} ms:"
    )
    for name, values in (
        ("first loud frame (onset)", onsets),
        ("last loud frame (offset)", offsets),
    ):
        print(
            f"  {name:<26} median {statistics.median(values):6.0f} ms   "
            f"min {min(values):6.0f}   max {max(values):6.0f}"
        )


if __name__ == "__main__":
    main()
