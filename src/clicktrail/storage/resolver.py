"""Token resolution for the redirect: one prepared query on a dedicated DBAPI connection.

SQLAlchemy's statement machinery costs tens of microseconds per call; the redirect resolves a
token per first click, so this module talks to the driver directly with one fixed SQL string.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.destinations import redirect_location
from clicktrail.domain.models import CampaignOptions
from clicktrail.services.ports import Target

_SQL = """
SELECT t.campaign_id, t.link_id, t.message_id, t.contact_id,
       COALESCE(t.destination, l.url), d.host, d.path_prefix, c.slug, c.options, l.options
FROM tokens t
JOIN links l ON l.id = t.link_id
JOIN campaigns c ON c.id = t.campaign_id
JOIN domains d ON d.id = c.domain_id
WHERE t.token = {p}
"""


# Tokens of a range of messages, for `prefetch` (message ids grow with every send and wrap).
_PREFETCH_SQL = """
SELECT t.campaign_id, t.link_id, t.message_id, t.contact_id,
       COALESCE(t.destination, l.url), d.host, d.path_prefix, c.slug, c.options, l.options,
       t.token
FROM tokens t
JOIN links l ON l.id = t.link_id
JOIN campaigns c ON c.id = t.campaign_id
JOIN domains d ON d.id = c.domain_id
WHERE t.message_id BETWEEN {p} AND {p}
"""
PREFETCH_MESSAGES = 250  # messages per chunk: ~500 targets built per hold of the GIL (~1 ms)
PREFETCH_ROWS = 5000  # at most this many tokens fetched at once (a message may have many)

log = logging.getLogger("clicktrail.redirect")

LOOKUP_TIMEOUT_MS = 2000
BACKOFF_S = 2.0


class StorageUnavailable(Exception):
    """Token storage did not answer (the redirect answers 503)."""


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text, psycopg as parsed values.
    return json.loads(value) if isinstance(value, str | bytes) else value


class TokenResolver:
    """Looks tokens up in storage, with a bounded in-process cache of hits."""

    def __init__(self, engine: sa.Engine, cache_size: int = 200_000) -> None:
        self.engine = engine
        self.cache_size = cache_size
        self._cache: dict[str, Target] = {}
        self._local = threading.local()
        self._sqlite = engine.dialect.name == "sqlite"
        self._sql = _SQL.format(p="?" if self._sqlite else "%s")
        self._fallbacks: dict[str, str] = {}
        self._down_until = 0.0
        self._plans: dict[tuple[int, str], tuple[str, str, str, bool]] = {}
        self._evict_lock = threading.Lock()
        self._fallbacks_until = 0.0
        self._prefetch_sql = _PREFETCH_SQL.format(p="?" if self._sqlite else "%s")
        self._prefetched_upto = 0  # highest message id loaded by `prefetch`
        self._stop_prefetch = threading.Event()
        self._prefetcher: threading.Thread | None = None

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            if self.engine.dialect.name == "postgresql":
                # Autocommit: each lookup is its own statement, no idle-in-transaction session
                # and no extra round trip to end a transaction.
                # Prepared at once: a primary-key lookup has one good plan.
                conn.driver_connection.autocommit = True  # type: ignore[union-attr]
                conn.driver_connection.prepare_threshold = 0  # type: ignore[union-attr]
                # The lookup runs on the event loop: never let a stalled server hold it long.
                conn.driver_connection.execute(  # type: ignore[union-attr]
                    f"SET statement_timeout = {LOOKUP_TIMEOUT_MS}"
                )
            self._local.conn = conn
        return conn

    @property
    def is_remote(self) -> bool:
        """True when lookups cross the network (PostgreSQL) and can stall."""
        return self.engine.dialect.name != "sqlite"

    def cached(self, token: str) -> Target | None:
        """Return the cached target of `token`, without touching storage."""
        return self._cache.get(token)

    def mark_unavailable(self) -> None:
        """Fail uncached lookups fast for a while (a caller gave up waiting on one)."""
        self._down_until = time.monotonic() + BACKOFF_S

    def resolve(self, token: str) -> Target | None:
        """Return where `token` leads, or None if no such token is stored.

        Raises when storage cannot answer. After a failure, lookups of uncached tokens fail at
        once for `BACKOFF_S` seconds instead of each waiting on a dead server.
        """
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        if time.monotonic() < self._down_until:
            raise StorageUnavailable("token storage unreachable; retrying shortly")
        try:
            try:
                row = self._query(token)
            except Exception:
                # A broken connection (database restarted): drop it, try once on a new one.
                self._drop()
                row = self._query(token)
        except Exception:
            self._drop()
            self._down_until = time.monotonic() + BACKOFF_S
            raise
        if row is None:
            return None
        target = self._target(row)
        cache = self._cache
        with self._evict_lock:  # lookups may run on several threads (PostgreSQL)
            if len(cache) >= self.cache_size:
                # FIFO eviction: dicts keep insertion order; a campaign's clicks come in a burst.
                del cache[next(iter(cache))]
            cache[token] = target
        return target

    def _target(self, row: Any) -> Target:
        location, head, tail, add_cid = self._plan(row)
        return Target(
            row[0], row[1], row[2], row[3], location, sys.intern(row[5]), sys.intern(row[6]),
            head, tail, add_cid,
        )  # fmt: skip

    def prefetch(self) -> int:
        """Load the tokens of messages newer than the last call into the cache (at most the
        newest `cache_size`); return how many. A recipient's first click is then a cache hit
        (an individual lookup costs several times a bulk one). Works in chunks of messages,
        oldest first (FIFO eviction drops the oldest), never holding many rows or the event
        loop for long."""
        p = "?" if self._sqlite else "%s"
        lower = self._prefetched_upto
        cutoff = self._rows(
            f"SELECT message_id FROM tokens ORDER BY message_id DESC LIMIT 1 OFFSET {p}",
            (self.cache_size - 1,),
        )
        if cutoff:
            lower = max(lower, cutoff[0][0] - 1)
        loaded = 0
        cache = self._cache
        per_chunk = PREFETCH_MESSAGES
        while True:
            ids = self._rows(
                f"SELECT id FROM messages WHERE id > {p} ORDER BY id LIMIT {p}",
                (lower, per_chunk),
            )
            if not ids:
                break
            rows = self._rows(
                f"{self._prefetch_sql} LIMIT {PREFETCH_ROWS + 1}", (ids[0][0], ids[-1][0])
            )
            if len(rows) > PREFETCH_ROWS and per_chunk > 1:
                per_chunk = max(1, per_chunk // 8)  # messages with many tokens: fewer at once
                continue
            rows = rows[:PREFETCH_ROWS]  # one message with more tokens: the rest on demand
            targets = [(r[10], self._target(r)) for r in rows]
            with self._evict_lock:
                for token, target in targets:
                    if token in cache:
                        continue
                    if len(cache) >= self.cache_size:
                        del cache[next(iter(cache))]
                    cache[token] = target
            loaded += len(targets)
            lower = self._prefetched_upto = ids[-1][0]
            time.sleep(0)  # let the event loop run between chunks
        return loaded

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._conn()
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def start_prefetch(self, interval: float) -> None:
        """Prefetch now and then every `interval` seconds on a thread (0: never)."""
        if interval <= 0 or self._prefetcher is not None:
            return

        def run() -> None:
            while not self._stop_prefetch.is_set():
                try:
                    self.prefetch()
                except Exception:
                    log.warning("loading new tokens into the cache failed", exc_info=True)
                    self._drop()
                self._stop_prefetch.wait(interval)
            self.close()

        self._prefetcher = threading.Thread(target=run, name="clicktrail-prefetch", daemon=True)
        self._prefetcher.start()

    def stop_prefetch(self) -> None:
        """Stop the prefetch thread (after the chunk it is on)."""
        self._stop_prefetch.set()
        if self._prefetcher is not None:
            self._prefetcher.join(timeout=10)
            self._prefetcher = None

    def _plan(self, row: Any) -> tuple[str, str, str, bool]:
        # Every token of a link shares one destination: plan it once per (link, URL) and let
        # the cached targets share those strings. With 200k cached tokens this halves memory.
        key = (row[1], row[4])
        plan = self._plans.get(key)
        if plan is None:
            options = CampaignOptions.from_dict(_json(row[8]))
            link_utm = dict((_json(row[9]) or {}).get("utm") or {})
            plan = redirect_location(
                row[4], options.utm_params(row[7], link_utm), options.click_id_param
            )
            if len(self._plans) >= self.cache_size:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def fallback_for(self, host: str) -> str | None:
        """Return the fallback URL of the short domain `host`, if it has one.

        Domains are few: all are loaded at once and reloaded at most every 30 s, so a scan of
        unknown tokens costs no query each. A database error keeps the last known map.
        """
        now = time.monotonic()
        if now >= self._fallbacks_until and now >= self._down_until:
            try:
                conn = self._conn()
                cur = conn.cursor()
                try:
                    cur.execute("SELECT host, fallback_url FROM domains")
                    self._fallbacks = {h: f for h, f in cur.fetchall() if f}
                finally:
                    cur.close()
            except Exception:
                self._drop()
            self._fallbacks_until = now + 30.0
        return self._fallbacks.get(host)

    def _query(self, token: str) -> Any:
        conn = self._conn()
        if self._sqlite:
            # sqlite3's own execute (its statement cache, a C cursor): a few µs less than the
            # pool proxy's cursor, on every first click of a token.
            return conn.driver_connection.execute(self._sql, (token,)).fetchone()
        rows = self._rows(self._sql, (token,))
        return rows[0] if rows else None

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken; nothing more to do
                conn.invalidate()

    def close(self) -> None:
        """Return the connection of the calling thread."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
