"""The sticky split: who a caller is, and how a change of shares moves callers."""

from __future__ import annotations

from functions.agents.traffic import assigned_version, sticky_key
from functions.domain.agents import TrafficEntry


def split(*shares: tuple[int, int]) -> list[TrafficEntry]:
    return [TrafficEntry(version=v, percent=p) for v, p in shares]


def test_the_caller_is_the_end_user_else_the_phone_number_else_the_api_user() -> None:
    assert sticky_key("c-1", "+15550100", "alice") == "end_user:c-1"
    assert sticky_key(None, "+15550100", "alice") == "phone:+15550100"
    assert sticky_key(None, None, "alice") == "user:alice"


def test_growing_a_canary_moves_callers_only_towards_it() -> None:
    users = [f"user:{i}" for i in range(2000)]
    before = {u: assigned_version("agt_1", u, split((1, 90), (2, 10))) for u in users}
    after = {u: assigned_version("agt_1", u, split((1, 50), (2, 50))) for u in users}
    assert all(after[u] == 2 for u in users if before[u] == 2)
    moved = sum(before[u] != after[u] for u in users) / len(users)
    assert 0.35 <= moved <= 0.45, moved


def test_the_same_caller_lands_apart_on_different_agents() -> None:
    # The agent id is part of the hash: one unlucky caller is not everyone's canary.
    canary = split((1, 50), (2, 50))
    picks = {assigned_version(f"agt_{n}", "end_user:c-1", canary) for n in range(40)}
    assert picks == {1, 2}


def test_entry_order_does_not_change_the_assignment() -> None:
    users = [f"user:{i}" for i in range(500)]
    a = split((1, 70), (2, 20), (3, 10))
    b = list(reversed(a))
    assert all(assigned_version("x", u, a) == assigned_version("x", u, b) for u in users)
