"""The click writer: moves the click log's batches into `click_inbox`, through the driver.

This is the only write the redirect's process does per click, so it is kept to what the
database must do: the click log's spool line stored as it is (no second serialisation), one
statement prepared once, no secondary index on the table (SQLite `executemany`, PostgreSQL
`COPY`). SQLAlchemy's executemany costs about 23 µs per
row here against 2–3 µs for the driver's; see bench/RESULTS.md. Classification, the indexes of
`clicks` and the report rollup are the classification job's (`SqlStore.move_inbox`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("clicktrail.clicks")

_SQLITE_INSERT = "INSERT INTO click_inbox (raw) VALUES (?)"
_PG_COPY = "COPY click_inbox (raw) FROM STDIN"


def _lines(lines: Sequence[bytes]) -> Iterator[bytes]:
    for line in lines:
        yield line if line.endswith(b"\n") else line + b"\n"


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
        """Write spool `lines` (JSON arrays, newline included or not) in one transaction;
        return how many. Raises if the database fails."""
        if not lines:
            return 0

        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                try:
                    if self.postgres:
                        # COPY's text format as one buffer: a JSON line has no raw tab or line
                        # break, so only backslashes need doubling (one C-level replace).
                        data = b"".join(
                            line.replace(b"\\", b"\\\\") if b"\\" in line else line
                            for line in _lines(lines)
                        )
                        with cur.copy(_PG_COPY) as copy:
                            copy.write(data)
                    else:
                        cur.executemany(
                            _SQLITE_INSERT, [(line.decode().rstrip("\n"),) for line in lines]
                        )
                finally:
                    cur.close()
                conn.commit()
            except Exception:
                self._discard()
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
