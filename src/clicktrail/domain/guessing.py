"""Token guessing: a client that misses many tokens is refused cheaply, and it is recorded.

A well-formed token that is not in the redirect's cache costs a storage lookup. People almost
never miss (a mistyped link usually fails the token's check character, which costs nothing), but
a client walking the token space misses thousands of times a second: each miss is a query.

Each client (an IPv4 address, or the /64 of an IPv6 address: one host may hold a whole /64) has
a budget of misses that refills at a steady rate, a token bucket. While its budget is spent, its
lookups of *uncached* tokens are refused (the redirect answers 429 with Retry-After) without
touching storage; cached links (a recent campaign's) still redirect, so a person sharing an
address with a guesser is only slowed on old links. An episode starts when a client first runs
out of budget and ends once its budget has refilled; both are reported to the caller for a log
line, never one per request.

Pure logic: the caller passes the time (seconds, monotonic).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(slots=True)
class _Client:
    budget: float
    at: float
    episode_start: float | None = None
    misses: int = 0  # in the current episode
    refused: int = 0  # in the current episode


@dataclass(frozen=True, slots=True)
class Episode:
    """A client that ran out of its miss budget: when, how many misses and refusals."""

    client: str
    started: float
    ended: float | None
    misses: int
    refused: int


def client_key(ip: str | None) -> str:
    """Return the key a client's misses are counted under: the IPv4 address, or the /64 of an
    IPv6 address (``2001:db8:1:2::/64``); ``-`` when the address is unknown."""
    if not ip:
        return "-"
    if ":" not in ip:
        return ip
    try:
        net = ipaddress.IPv6Network((ip, 64), strict=False)
    except ValueError:
        return ip
    return str(net)


class MissGuard:
    """Per-client miss budgets. `burst` misses at once, then `per_second` on average.

    Bounded: at most `max_clients` clients are tracked; when full, clients with a full budget
    (forgotten at no loss) are dropped first, then everyone.
    """

    def __init__(self, burst: int, per_second: float, max_clients: int = 10_000) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("a miss budget needs burst >= 1 and per_second > 0")
        self.burst = float(burst)
        self.per_second = per_second
        self.max_clients = max_clients
        self._clients: dict[str, _Client] = {}
        self.misses = 0  # since start, every client
        self.refused = 0  # since start, every client
        # Clients in an episode: only they can be refused (a budget below one starts an
        # episode, and only a full budget ends it), so while none is, `allows` need not run.
        self.open_episodes = 0

    def _refill(self, c: _Client, now: float) -> None:
        if now > c.at:
            c.budget = min(self.burst, c.budget + (now - c.at) * self.per_second)
            c.at = now

    def allows(self, key: str, now: float) -> bool:
        """Return False when `key` has spent its miss budget: refuse its uncached lookup."""
        c = self._clients.get(key)
        if c is None:
            return True
        self._refill(c, now)
        if c.budget >= 1.0:
            return True
        c.refused += 1
        self.refused += 1
        return False

    def miss(self, key: str, now: float) -> Episode | None:
        """Count a miss of `key`; return the episode when this miss starts one."""
        self.misses += 1
        c = self._clients.get(key)
        if c is None:
            if len(self._clients) >= self.max_clients:
                self._forget(now)
            c = self._clients[key] = _Client(self.burst, now)
        else:
            self._refill(c, now)
        c.budget = max(0.0, c.budget - 1.0)
        if c.episode_start is not None:
            c.misses += 1
            return None
        if c.budget < 1.0:
            c.episode_start, c.misses, c.refused = now, 1, 0
            self.open_episodes += 1
            return Episode(key, now, None, 1, 0)
        return None

    def ended(self, now: float) -> list[Episode]:
        """Return (and close) the episodes of clients whose budget has refilled."""
        done: list[Episode] = []
        for key, c in self._clients.items():
            if c.episode_start is None:
                continue
            self._refill(c, now)
            if c.budget >= self.burst:
                done.append(Episode(key, c.episode_start, now, c.misses, c.refused))
                c.episode_start, c.misses, c.refused = None, 0, 0
                self.open_episodes -= 1
        return done

    def _forget(self, now: float) -> None:
        for key in [k for k, c in self._clients.items() if c.episode_start is None]:
            c = self._clients[key]
            self._refill(c, now)
            if c.budget >= self.burst:
                del self._clients[key]
        if len(self._clients) >= self.max_clients:
            self._clients.clear()
            self.open_episodes = 0
