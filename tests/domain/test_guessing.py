"""Token-guessing budgets (domain.guessing): burst, refill, episodes, IPv6 /64, bounded table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.guessing import MissGuard, client_key


def test_burst_then_refused_then_refilled() -> None:
    guard = MissGuard(burst=3, per_second=1.0)
    assert [guard.miss("a", 0.0) is not None for _ in range(3)] == [False, False, True]
    assert not guard.allows("a", 0.0)
    assert guard.allows("b", 0.0)  # other clients have their own budget
    assert guard.allows("a", 1.0)  # one miss a second comes back
    assert (guard.misses, guard.refused) == (3, 1)


def test_an_episode_starts_once_and_ends_when_the_budget_is_full() -> None:
    guard = MissGuard(burst=2, per_second=1.0)
    started = [guard.miss("a", t / 10) for t in range(10)]
    assert sum(s is not None for s in started) == 1
    assert not guard.allows("a", 1.0)
    assert guard.ended(1.5) == []  # still short of a full budget
    assert guard.open_episodes == 1
    (ep,) = guard.ended(20.0)
    assert (ep.client, ep.misses, ep.refused, ep.ended) == ("a", 9, 1, 20.0)
    assert guard.open_episodes == 0
    assert guard.ended(30.0) == []


def test_client_key_groups_ipv6_by_64() -> None:
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key(None) == "-"


def test_the_table_is_bounded() -> None:
    guard = MissGuard(burst=1, per_second=1.0, max_clients=100)
    for i in range(10_000):
        guard.miss(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(guard._clients) <= 100


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 0.1)), max_size=200))
def test_never_more_misses_than_burst_plus_refill(events: list[tuple[str, float]]) -> None:
    """Whatever the order, a client is allowed at most burst + rate × elapsed lookups."""
    guard = MissGuard(burst=5, per_second=10.0)
    now = 0.0
    allowed = {"a": 0, "b": 0, "c": 0}
    for key, step in events:
        now += step
        if not guard.open_episodes or guard.allows(key, now):
            allowed[key] += 1
            guard.miss(key, now)
    for n in allowed.values():
        assert n <= 5 + 10.0 * now + 1
