"""Token prefetch: newly sent tokens are loaded into the redirect's cache in bulk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clicktrail.storage.resolver import TokenResolver
from factories import (
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
    tokens_of,
)


def _sent_campaign(store: Repos, tmp_path: Path, contacts: int, start: int = 0) -> list[str]:
    ws = store.workspaces.find_workspace("prefetch") or make_workspace(store, slug="prefetch")
    if not store.workspaces.list_domains(ws.id):
        make_domain(store, ws)
    make_contacts(store, ws, contacts, start=start)
    cp = make_campaign(
        store, ws, "Go https://shop.example.com/p/{first_name} and https://x.example.com"
    )
    send(store, ws, cp, tmp_path / f"outbox-{start}.jsonl")
    return [t for t, _, _ in tokens_of(store, cp)]


def test_prefetch_loads_new_tokens_newest_first_and_matches_lookups(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    first = _sent_campaign(store, tmp_path, 30)
    resolver = TokenResolver(engine, cache_size=50)  # smaller than the 60 tokens sent
    try:
        assert resolver.prefetch() == 50  # at most the cache size, newest messages first
        cached = [t for t in first if resolver.cached(t) is not None]
        assert len(cached) == 50
        # The oldest message's tokens were left out (messages are ordered by id).
        fresh = TokenResolver(engine)
        try:
            for token in cached:
                assert resolver.cached(token) == fresh.resolve(token)  # same target as a lookup
        finally:
            fresh.close()
        assert resolver.prefetch() == 0  # nothing new

        later = _sent_campaign(store, tmp_path, 5, start=100)
        # Every contact of the workspace gets the second campaign: 35 messages, 70 new tokens,
        # more than the cache holds. The newest 50 are loaded and push out the older entries.
        assert len(later) == 70
        assert resolver.prefetch() == 50
        assert sum(resolver.cached(t) is not None for t in later) == 50
        assert not any(resolver.cached(t) for t in first)
        assert len(resolver._cache) == 50
    finally:
        resolver.close()


def test_prefetch_thread_stops(store: Repos, engine: sa.Engine, tmp_path: Path) -> None:
    tokens = _sent_campaign(store, tmp_path, 3)
    resolver = TokenResolver(engine)
    resolver.start_prefetch(0.05)
    try:
        import time

        deadline = time.monotonic() + 10
        while resolver.cached(tokens[-1]) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(resolver.cached(t) is not None for t in tokens)
    finally:
        resolver.stop_prefetch()
        resolver.close()
    assert resolver._prefetcher is None


def test_prefetch_bounds_each_fetch_when_messages_have_many_tokens(
    store: Repos, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clicktrail.storage import resolver as module

    monkeypatch.setattr(module, "PREFETCH_ROWS", 5)  # two links per message: 3+ messages overflow
    tokens = _sent_campaign(store, tmp_path, 12)
    resolver = TokenResolver(engine)
    fetched: list[int] = []
    rows = resolver._rows
    monkeypatch.setattr(
        resolver, "_rows", lambda sql, params: _record(fetched, sql, rows(sql, params))
    )
    try:
        assert resolver.prefetch() == len(tokens)
        assert all(resolver.cached(t) is not None for t in tokens)
        assert max(fetched) <= 6  # PREFETCH_ROWS + 1: never the whole range at once
    finally:
        resolver.close()


def _record(sizes: list[int], sql: str, rows: list[Any]) -> list[Any]:
    if "FROM tokens t" in sql:  # the fetches of tokens, not of message ids
        sizes.append(len(rows))
    return rows


def test_a_full_cache_evicts_the_oldest_token_first(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    tokens = _sent_campaign(store, tmp_path, 4)[:6]
    resolver = TokenResolver(engine, cache_size=3)
    fresh = TokenResolver(engine, cache_size=0)
    try:
        for token in tokens[:5]:
            assert resolver.resolve(token) == fresh.resolve(token)
        cached = [t for t in tokens if resolver.cached(t) is not None]
        assert cached == tokens[2:5]
        resolver.resolve(tokens[3])  # a hit does not move a token
        resolver.resolve(tokens[0])  # evicts tokens[2], the oldest
        assert [t for t in tokens if resolver.cached(t) is not None] == [tokens[0], *tokens[3:5]]
        for _ in range(3):  # a full turn of the cache, twice over the same tokens
            for token in tokens:
                resolver.resolve(token)
        assert [t for t in tokens if resolver.cached(t) is not None] == tokens[3:6]
        assert resolver.prefetch() > 0  # the newest messages' tokens, loaded over the rest
        assert len(resolver._cache) == 3 and sorted(resolver._order) == sorted(resolver._cache)
        assert fresh.prefetch() == 0 and not fresh._cache  # token_cache_size 0: no cache
    finally:
        resolver.close()
        fresh.close()
