"""Traffic rules: what a valid split is, and which version a caller lands on (a stable hash)."""

from __future__ import annotations

import hashlib

from functions.domain.agents import MAX_TRAFFIC_ENTRIES, TrafficEntry
from functions.domain.errors import InvalidRequest

# A split is resolved to 1/BUCKETS of the traffic: finer than any whole percent.
BUCKETS = 10_000


def checked_split(entries: list[TrafficEntry], latest_version: int) -> list[TrafficEntry]:
    """The entries in version order, or `InvalidRequest` naming what to fix."""
    if not entries:
        raise InvalidRequest("traffic: give at least one {version, percent} entry")
    if len(entries) > MAX_TRAFFIC_ENTRIES:
        raise InvalidRequest(
            f"traffic: {len(entries)} entries; a split has at most {MAX_TRAFFIC_ENTRIES} versions"
        )
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        if entry.version > latest_version:
            have = f"versions 1..{latest_version}" if latest_version else "no versions yet"
            raise InvalidRequest(
                f"traffic.{i}.version: version {entry.version} does not exist (the agent has {have})"
            )
        if entry.version in seen:
            raise InvalidRequest(
                f"traffic.{i}.version: version {entry.version} is listed twice; list it once"
            )
        seen.add(entry.version)
    total = sum(e.percent for e in entries)
    if total != 100:
        raise InvalidRequest(f"traffic: the percents total {total}; they must total 100")
    return sorted(entries, key=lambda e: e.version)


def sticky_key(end_user_id: str | None, phone_number: str | None, user_id: str) -> str:
    """Who a caller is for the split: the customer's end user, else the phone number, else the
    API-key user (so one user's sessions all land on one version)."""
    if end_user_id:
        return f"end_user:{end_user_id}"
    if phone_number:
        return f"phone:{phone_number}"
    return f"user:{user_id}"


def bucket_of(agent_id: str, sticky_key: str) -> int:
    """The caller's place in 0..BUCKETS-1; the same caller always gets the same place."""
    digest = hashlib.sha256(f"{agent_id}\n{sticky_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assigned_version(agent_id: str, sticky_key: str, entries: list[TrafficEntry]) -> int:
    """The version a caller lands on: its bucket against the entries' cumulative shares.

    Entries are taken in version order, so growing a newer version's share at the expense of the
    one before it moves only callers from that one to it.
    """
    place = bucket_of(agent_id, sticky_key)
    edge = 0
    ordered = sorted(entries, key=lambda e: e.version)
    for entry in ordered:
        edge += entry.percent * BUCKETS // 100
        if place < edge:
            return entry.version
    return ordered[-1].version
