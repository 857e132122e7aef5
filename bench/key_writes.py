"""Writes per partition-key value of one session's lifecycle, counted on the emulator (moto).

Runs `--users` users, one call each from create to hang-up, through the API handler and signed
LiveKit webhooks (the same drive and write counter as tests/integration/test_no_hot_key.py),
then groups the key values by kind (ids and shard numbers as placeholders) and writes, per kind,
the writes one lifecycle makes, how many of them are transactional, how many values the kind
took, and the largest share of all writes one value took, to bench/results/key_writes.json.
`bench/scale_model.py` reads it.

    .venv/bin/python bench/key_writes.py [--users 32] [--end-users] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "key_writes.json"


def _environment() -> None:
    """What tests/conftest.py's control_plane fixture sets: moto, the test table, no LiveKit."""
    from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
    from infra.local.paths import CONFIG_FILE
    from tests.support.control_plane import REPORTS_BUCKET, TABLE, unreachable_livekit_url

    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "REPORTS_BUCKET": REPORTS_BUCKET,
            "SESSIONS_TABLE": TABLE,
            "VOICE_CONFIG_URI": str(CONFIG_FILE),
            "LIVEKIT_URL": unreachable_livekit_url(),
            "LIVEKIT_API_KEY": DEV_LIVEKIT_KEY,
            "LIVEKIT_API_SECRET": DEV_LIVEKIT_SECRET,
            "LIVEKIT_TIMEOUT_SECONDS": "1",
            "ENVIRONMENT": "local",
            # The counter reads each written item twice: give a request the longest budget.
            "AWS_BUDGET_SECONDS": "10",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


def measure(users: int, end_users: bool) -> dict:
    import boto3
    from moto import mock_aws

    _environment()
    from functions.wiring import get_container
    from infra.template import create_sessions_table
    from tests.support.control_plane import REPORTS_BUCKET, TABLE, reset_control_plane
    from tests.support.fleet import report_capacity
    from tests.support.key_writes import count_key_writes, key_kind, session_lifecycle

    with mock_aws():
        client = boto3.client("dynamodb")
        create_sessions_table(client, TABLE)
        boto3.client("s3").create_bucket(Bucket=REPORTS_BUCKET)
        report_capacity(client, TABLE, free=users + 10)
        boto3.setup_default_session()
        writes = count_key_writes(
            boto3.DEFAULT_SESSION.events, boto3.session.Session().client("dynamodb"), TABLE
        )
        reset_control_plane()
        writes.active = False
        keys = {f"user-{i}": get_container().keys.create(f"user-{i}")[0] for i in range(users)}
        writes.active = True
        for i, (user, key) in enumerate(keys.items()):
            body = {"end_user_id": f"person-{i}"} if end_users else {}
            session_lifecycle({"x-api-key": key}, user, body)
        total = sum(writes.counts.values())
        per_kind: Counter[str] = Counter()
        txn: Counter[str] = Counter()
        values: dict[str, set[str]] = {}
        busiest: dict[str, float] = {}
        for key, n in writes.counts.items():
            kind = key_kind(key)
            per_kind[kind] += n
            txn[kind] += writes.transactional[key]
            values.setdefault(kind, set()).add(key)
            busiest[kind] = max(busiest.get(kind, 0.0), n / total)
    return {
        "kinds": {
            kind: {
                "writes_per_lifecycle": round(per_kind[kind] / users, 3),
                "transactional_per_lifecycle": round(txn[kind] / users, 3),
                "values": len(values[kind]),
                "busiest_value_share": round(busiest[kind], 4),
            }
            for kind in sorted(per_kind)
        },
        "writes_per_lifecycle": round(total / users, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--end-users", action="store_true", help="each create names an end user")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from voice.table import KEY_SHARDS

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "users": args.users,
        "end_users": args.end_users,
        "key_shards": KEY_SHARDS,
        "lifecycle": "create, caller joins, agent joins, caller leaves (LiveKit unreachable: "
        "the room's deletion waits in the cleanup backlog)",
    } | measure(args.users, args.end_users)
    for kind, row in result["kinds"].items():
        print(
            f"{kind:<40} {row['writes_per_lifecycle']:>5} writes/lifecycle "
            f"({row['transactional_per_lifecycle']} in transactions), {row['values']:>3} values, "
            f"busiest {row['busiest_value_share']:.1%}"
        )
    print(f"total {result['writes_per_lifecycle']} writes per lifecycle")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
