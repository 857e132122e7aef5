"""SnapStart hooks of the API function: warm up before the snapshot, make each restored copy its own."""

from __future__ import annotations

import random

from functions.wiring import forget_process_state

# Placeholder keys: building a client must not resolve (and so snapshot) the role's credentials.
_WARM_ONLY = {"aws_access_key_id": "snapshot-warm-up", "aws_secret_access_key": "never-used"}


def before_snapshot() -> None:
    """Loads what the first request would, then drops anything built from this copy's world."""
    import boto3
    from livekit import api  # noqa: F401  (aiohttp and the protobufs: the token and room calls)

    # botocore's DynamoDB model and endpoint rules, cached in the default session's loader, which
    # later clients reuse; the warm-up client itself (and its placeholder keys) is thrown away.
    boto3.client("dynamodb", **_WARM_ONLY)
    forget_process_state()


def after_restore() -> None:
    """Every copy resumed from the one snapshot gets its own randomness, clients and caches."""
    # Reseeded from os.urandom: copies must not share the snapshot's pseudo-random sequence
    # (botocore's retry jitter uses it). uuid4 and secrets read os.urandom and need nothing.
    random.seed()
    forget_process_state()


def register() -> None:
    """Registers the hooks with the Lambda runtime's SnapStart library, where there is one."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # not a Lambda managed runtime (a local build, a bench): no snapshots
        return
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
