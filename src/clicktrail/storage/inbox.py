"""The click writer: moves the click log's batches into `click_inbox`, through the driver.

This is the only write the redirect's process does per click, so it is kept to what the
database must do: the click log's spool lines of one batch stored as they are, in one row (no
second serialisation, no row per click, no secondary index), with one prepared statement.
Against a row per click (SQLite `executemany`, PostgreSQL `COPY`) this costs SQLite about 40 %
less and the PostgreSQL server about a sixth of the CPU (lz4-compressed TOAST instead of 5,000
tuples and index entries); see bench/RESULTS.md and migration 0013. Classification, the indexes
of `clicks` and the report rollup are the classification job's (`SqlStore.move_inbox`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.storage.database import raise_if_unavailable

log = logging.getLogger("clicktrail.clicks")

_SQLITE_INSERT = "INSERT INTO click_inbox (n, raw) VALUES (?, ?)"
_PG_INSERT = "INSERT INTO click_inbox (n, raw) VALUES (%s, %s)"


def _lines(lines: Sequence[bytes]) -> Iterator[bytes]:
    for line in lines:
        yield line if line.endswith(b"\n") else line + b"\n"


def batch_text(lines: Sequence[bytes]) -> str:
    """Return spool `lines` as one inbox `raw` value: each line ends with a newline."""
    return b"".join(_lines(lines)).decode()


def inbox_lines(raw: str) -> list[str]:
    """Return the spool lines (JSON arrays) of an inbox row's `raw` value."""
    return [line for line in raw.split("\n") if line]


class InboxWriter:
    """Writes click rows to `click_inbox` on one connection of its own (one writer thread)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.engine.raw_connection()
        return self._conn

    def __call__(self, lines: Sequence[bytes]) -> int:
        """Write spool `lines` (JSON arrays, newline included or not) as one inbox row, in
        one transaction; return how many. Raises if the database fails."""
        if not lines:
            return 0

        with self._lock:
            try:
                conn = self._connection()
                cur = conn.cursor()
                try:
                    cur.execute(
                        _PG_INSERT if self.postgres else _SQLITE_INSERT,
                        (len(lines), batch_text(lines)),
                    )
                finally:
                    cur.close()
                conn.commit()
            except Exception as exc:
                self._discard()
                raise_if_unavailable(self.engine, exc)
                raise
        return len(lines)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate() if hasattr(conn, "invalidate") else conn.close()
            except Exception:
                log.debug("closing a failed click-writer connection", exc_info=True)

    def close(self) -> None:
        """Return the connection to the pool."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None
