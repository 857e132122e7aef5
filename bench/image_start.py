"""Prints the worker image's size and its container start time to "registered" with LiveKit.

Size: the image as the engine stores it, its `docker save` archive, and that archive gzipped
(close to what a registry stores and a Fargate task pulls). Start: from the run command to the
worker's "HTTP server listening" (health endpoint up) and "registered worker" log records, against
a local livekit-server, --runs times (the image's layers are in the page cache: this is the
container's own start, not a pull). Several images are started in turns, so a busy machine slows
them alike. Figures are merged into bench/results/image.json, one entry per image tag.

    .venv/bin/python bench/image_start.py [--runs 5] [IMAGE ...]   # default localhost/voice-worker:local
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.build.container import WorkerContainer  # noqa: E402
from infra.build.engine import Engine, find_engine  # noqa: E402
from infra.build.image import IMAGE  # noqa: E402
from infra.local.stack import free_port  # noqa: E402
from tests.support.livekit import start_livekit_server, stop_process  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "image.json"
MB = 1_000_000


def gzipped_size(path: Path) -> int:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, 31)
    total = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            total += len(squeeze.compress(chunk))
    return total + len(squeeze.flush())


def sizes(engine: Engine, image: str, tmp: Path) -> dict[str, float]:
    size = int(engine.run("image", "inspect", "--format", "{{.Size}}", image, capture=True))
    archive = tmp / "image.tar"
    fmt = ["--format", "docker-archive"] if engine.is_podman else []
    engine.run("save", *fmt, "--output", str(archive), image, capture=True)
    try:
        return {
            "image_mb": round(size / MB, 1),
            "archive_mb": round(archive.stat().st_size / MB, 1),
            "archive_gzip_mb": round(gzipped_size(archive) / MB, 1),
        }
    finally:
        archive.unlink()


def start_times(
    engine: Engine, images: list[str], runs: int, tmp: Path
) -> dict[str, dict[str, list[float]]]:
    livekit = start_livekit_server(tmp)
    env = {
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
    }
    times = {image: {"health_s": [], "registered_s": []} for image in images}
    try:
        for _ in range(runs):
            for image in images:
                container = WorkerContainer.run(engine, image, free_port(), env)
                try:
                    health = container.seconds_to("HTTP server listening")
                    registered = container.seconds_to("registered worker")
                finally:
                    container.remove()
                times[image]["health_s"].append(round(health, 2))
                times[image]["registered_s"].append(round(registered, 2))
    finally:
        stop_process(livekit.process)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", nargs="*", default=[IMAGE])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    engine = find_engine()
    version = engine.run("--version", capture=True).strip()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        size = {image: sizes(engine, image, Path(tmp)) for image in args.images}
        times = start_times(engine, args.images, args.runs, Path(tmp))
    results = {}
    for image in args.images:
        result = {
            "image": image,
            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "load_average_at_start": round(load, 2),
            "engine": version,
            **size[image],
            **times[image],
            "health_median_s": statistics.median(times[image]["health_s"]),
            "registered_median_s": statistics.median(times[image]["registered_s"]),
        }
        results[image.rsplit(":", 1)[-1]] = result
        print(f"{image} ({version}, load average {load:.1f})")
        print(
            f"  size: {result['image_mb']} MB image, {result['archive_mb']} MB archive, "
            f"{result['archive_gzip_mb']} MB gzipped"
        )
        print(
            f"  start to health: median {result['health_median_s']} s {result['health_s']}; "
            f"to registered: median {result['registered_median_s']} s {result['registered_s']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**previous, **results}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)} under {', '.join(results)}")


if __name__ == "__main__":
    main()
