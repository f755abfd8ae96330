"""Token resolution for the redirect: one prepared query on a dedicated DBAPI connection.

SQLAlchemy's statement machinery costs tens of microseconds per call; the redirect resolves a
token per first click, so this module talks to the driver directly with one fixed SQL string.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.destinations import redirect_location
from clicktrail.domain.errors import StorageUnavailable
from clicktrail.domain.models import CampaignOptions
from clicktrail.services.ports import Target
from clicktrail.storage.database import UNAVAILABLE_MESSAGE, outages_of

# A miss reads the token's own row only; what its link shares with every other token of the
# link (URL, domain, campaign options) is read once per link (`_LINK_SQL`) and kept: the
# four-table join per miss cost about twice as much (bench/RESULTS.md).
_SQL = """
SELECT campaign_id, link_id, message_id, contact_id, destination FROM tokens WHERE token = {p}
"""
_LINK_SQL = """
SELECT l.url, d.host, d.path_prefix, c.slug, c.options, l.options
FROM links l
JOIN campaigns c ON c.id = l.campaign_id
JOIN domains d ON d.id = c.domain_id
WHERE l.id = {p}
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


def _json(value: Any) -> Any:
    # SQLite hands JSON columns back as text, psycopg as parsed values.
    return json.loads(value) if isinstance(value, str | bytes) else value


class TokenResolver:
    """Looks tokens up in storage, with a bounded in-process cache of hits."""

    def __init__(self, engine: sa.Engine, cache_size: int = 200_000) -> None:
        self.engine = engine
        self.cache_size = cache_size
        self._cache: dict[str, Target] = {}
        # Insertion order of `_cache`, for FIFO eviction. `del cache[next(iter(cache))]`
        # looked simpler but a dict's iterator walks over the deleted slots at the front of
        # its entry table until the next resize: about 18 µs an eviction with 100,000
        # entries, more than the rest of a cache miss (bench/RESULTS.md). 8 bytes an entry.
        self._order: collections.deque[str] = collections.deque()
        self._local = threading.local()
        self._sqlite = engine.dialect.name == "sqlite"
        self._sql = _SQL.format(p="?" if self._sqlite else "%s")
        self._link_sql = _LINK_SQL.format(p="?" if self._sqlite else "%s")
        # link id → (url, host, path prefix, campaign slug, campaign options, link options)
        self._links: dict[int, tuple[Any, ...]] = {}
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
        outages_of(self.engine).failed(f"token lookup took over {LOOKUP_TIMEOUT_MS} ms")

    def resolve(self, token: str) -> Target | None:
        """Return where `token` leads, or None if no such token is stored.

        Raises when storage cannot answer. After a failure, lookups of uncached tokens fail at
        once for `BACKOFF_S` seconds instead of each waiting on a dead server.
        """
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        if time.monotonic() < self._down_until:
            outages_of(self.engine).failed("token storage unreachable")
            raise StorageUnavailable(UNAVAILABLE_MESSAGE)
        try:
            try:
                row = self._query(token)
            except Exception:
                # A broken connection (database restarted): drop it, try once on a new one.
                self._drop()
                row = self._query(token)
            if row is None:
                return None
            campaign_id, link_id, message_id, contact_id, destination = row
            link = self._links.get(link_id)
            if link is None:
                link = self._link(link_id)
        except Exception as exc:
            self._drop()
            self._down_until = time.monotonic() + BACKOFF_S
            if not isinstance(exc, self.engine.dialect.loaded_dbapi.Error):
                raise
            # The driver's error (refused, cut, statement timeout): the storage outage error.
            outages_of(self.engine).failed(f"token lookup failed: {exc}".splitlines()[0])
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from exc
        if link is None:  # the link went away between the two reads
            return None
        target = self._target(
            campaign_id, link_id, message_id, contact_id,
            link[0] if destination is None else destination, *link[1:],
        )  # fmt: skip
        with self._evict_lock:  # lookups may run on several threads (PostgreSQL)
            self._keep(token, target)
        return target

    def _keep(self, token: str, target: Target) -> None:
        """Cache `target` under `token`, evicting the oldest entry when full (FIFO: a
        campaign's clicks come in a burst after its send). Call with `_evict_lock` held."""
        cache = self._cache
        if token not in cache:
            if self.cache_size <= 0:
                return  # token_cache_size 0: no cache
            if len(cache) >= self.cache_size:
                del cache[self._order.popleft()]
            self._order.append(token)
        cache[token] = target

    def _target(
        self, campaign_id: int, link_id: int, message_id: int, contact_id: int,
        destination: str, host: str, prefix: str, slug: str, campaign_options: Any,
        link_options: Any,
    ) -> Target:  # fmt: skip
        location, head, tail, add_cid = self._plan(
            link_id, destination, slug, campaign_options, link_options
        )
        return Target(
            campaign_id, link_id, message_id, contact_id, location, sys.intern(host),
            sys.intern(prefix), head, tail, add_cid,
        )  # fmt: skip

    def _link(self, link_id: int) -> tuple[Any, ...] | None:
        """Read what every token of link `link_id` shares, and keep it (a bounded map)."""
        try:
            rows = self._rows(self._link_sql, (link_id,))
        except Exception:
            self._drop()
            rows = self._rows(self._link_sql, (link_id,))
        if not rows:
            return None
        if len(self._links) >= self.cache_size:
            self._links.clear()
        link = self._links[link_id] = tuple(rows[0])
        return link

    def prefetch(self) -> int:
        """Load the tokens of messages newer than the last call into the cache (at most the
        newest `cache_size`); return how many. A recipient's first click is then a cache hit
        (an individual lookup costs several times a bulk one). Works in chunks of messages,
        oldest first (FIFO eviction drops the oldest), never holding many rows or the event
        loop for long."""
        if self.cache_size <= 0:
            return 0  # no cache to fill
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
            targets = [(r[10], self._target(*r[:10])) for r in rows]
            with self._evict_lock:
                for token, target in targets:
                    if token not in cache:
                        self._keep(token, target)
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

    def _plan(
        self, link_id: int, url: str, slug: str, campaign_options: Any, link_options: Any
    ) -> tuple[str, str, str, bool]:
        # Every token of a link shares one destination: plan it once per (link, URL) and let
        # the cached targets share those strings. With 200k cached tokens this halves memory.
        key = (link_id, url)
        plan = self._plans.get(key)
        if plan is None:
            options = CampaignOptions.from_dict(_json(campaign_options))
            link_utm = dict((_json(link_options) or {}).get("utm") or {})
            plan = redirect_location(
                url, options.utm_params(slug, link_utm), options.click_id_param
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
        if self._sqlite:
            # sqlite3's own execute on the driver's connection (its statement cache, a C
            # cursor): a few µs less than the pool proxy's cursor, on every first click.
            raw = getattr(self._local, "raw", None)
            if raw is None:
                raw = self._local.raw = self._conn().driver_connection
            return raw.execute(self._sql, (token,)).fetchone()
        rows = self._rows(self._sql, (token,))
        return rows[0] if rows else None

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = self._local.raw = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken; nothing more to do
                conn.invalidate()

    def close(self) -> None:
        """Close the connection of the calling thread."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = self._local.raw = None
        if conn is None:
            return
        if self.engine.dialect.name == "postgresql":
            # Not back to the pool: in autocommit with a statement timeout, it would give the
            # next `engine.begin()` "transactions" that a rollback cannot undo.
            conn.invalidate()
        else:
            conn.close()
