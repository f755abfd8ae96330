"""The click inbox and the clicks table's writes: the redirect's side and the job's side.

The redirect's side, `InboxWriter`, is the only write the redirect's process does per click, so
it is kept to what the database must do: the click log's spool lines of one batch stored as they
are, in one row (no second serialisation, no row per click, no secondary index), with one
prepared statement. Against a row per click (SQLite `executemany`, PostgreSQL `COPY`) this costs
SQLite about 40 % less and the PostgreSQL server about a sixth of the CPU (lz4-compressed TOAST
instead of 5,000 tuples and index entries); see bench/RESULTS.md and migration 0013.

The classification job's side are primitives the click pipeline (services/clicks.py) calls in
order: `take_batch` (whole inbox rows, oldest first, decoded with the click codec of
domain/clicks.py), `delivery_times` (what classification needs of their messages) and
`put_batch` (the clicks with their verdicts, their messages' click rollup, their contacts noted
for scoring and the removal of the inbox rows, in one transaction). Nothing here classifies or calls back into services.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord, InboxBatch, click_from_row
from clicktrail.services.clock import now_us
from clicktrail.storage.database import raise_if_unavailable
from clicktrail.storage.engagement import mark_dirty
from clicktrail.storage.events import click_events
from clicktrail.storage.rollup import refresh_click_rollup
from clicktrail.storage.sql import chunks, placeholder

log = logging.getLogger("clicktrail.clicks")

# `{p}` is the driver's placeholder, `{ps}` as many as an IN list needs (chunks of `sql.CHUNK`).
_INSERT_BATCH = "INSERT INTO click_inbox (n, raw) VALUES ({p}, {p})"
_SQLITE_INSERT = _INSERT_BATCH.format(p="?")
_PG_INSERT = _INSERT_BATCH.format(p="%s")
# The oldest rows and how many clicks each holds; then the chosen rows' lines.
_HEADS_SQL = "SELECT seq, n FROM click_inbox ORDER BY seq LIMIT {p}"
_LINES_SQL = "SELECT raw FROM click_inbox WHERE seq IN ({ps}) ORDER BY seq"
# By the rows' own ids, never by range: on PostgreSQL a row with a lower id can commit later.
_DELETE_SQL = "DELETE FROM click_inbox WHERE seq IN ({ps})"
_DELIVERY_SQL = "SELECT id, sent_us, delivered_us FROM messages WHERE id IN ({ps})"
CLICK_COLUMNS = (
    "click_id", "token", "campaign_id", "link_id", "message_id", "contact_id", "at_us", "method",
    "is_click", "ip", "user_agent", "headers", "verdict", "score", "reasons", "classifier_version",
)  # fmt: skip
# A click id already stored is skipped: replaying a spool or moving a row twice stores once.
_INSERT_CLICKS_SQL = (
    f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) "
    f"VALUES ({', '.join('{p}' for _ in CLICK_COLUMNS)}) ON CONFLICT DO NOTHING"
)


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


# -- the classification job's side ------------------------------------------------------------


def _in_list(sql: str, conn: sa.Connection, chunk: Sequence[int]) -> str:
    return sql.format(ps=", ".join(placeholder(conn) for _ in chunk))


def take_batch(engine: sa.Engine, limit: int) -> InboxBatch | None:
    """Return about `limit` clicks from the inbox, oldest first, with the rows holding them
    (left in place: `put_batch` removes them); None when the inbox is empty.

    Inbox rows are the click log's batches and are taken whole, so a batch holds rows until
    they hold `limit` clicks (at least one row, however large).
    """
    with engine.connect() as conn:
        heads = conn.exec_driver_sql(_HEADS_SQL.format(p=placeholder(conn)), (limit,)).all()
        rows: list[int] = []
        total = 0
        for seq, n in heads:
            if rows and total + n > limit:
                break
            rows.append(int(seq))
            total += n
        found = [
            raw
            for chunk in chunks(rows)
            for (raw,) in conn.exec_driver_sql(_in_list(_LINES_SQL, conn, chunk), tuple(chunk))
        ]
    if not found:
        return None
    records = [click_from_row(orjson.loads(line)) for raw in found for line in inbox_lines(raw)]
    return InboxBatch(tuple(rows), records)


def delivery_times(
    engine: sa.Engine, message_ids: Iterable[int]
) -> dict[int, tuple[int | None, int | None]]:
    """Return {message id: (sent_us, delivered_us)} of the given messages."""
    ids = sorted(set(message_ids))
    out: dict[int, tuple[int | None, int | None]] = {}
    with engine.connect() as conn:
        for chunk in chunks(ids):
            for mid, sent_us, delivered_us in conn.exec_driver_sql(
                _in_list(_DELIVERY_SQL, conn, chunk), tuple(chunk)
            ):
                out[mid] = (sent_us, delivered_us)
    return out


def put_batch(engine: sa.Engine, batch: InboxBatch, verdicts: Sequence[Verdict]) -> int:
    """Store `batch`'s clicks with their provisional `verdicts` (aligned with its records),
    refresh their messages' click rollup, note their contacts for scoring and remove the batch's inbox rows, in one transaction;
    return how many clicks it held. A click moved twice (a concurrent mover, a replayed spool)
    is stored once."""
    with engine.begin() as conn:
        insert_clicks(conn, batch.records, verdicts)
        refresh_click_rollup(conn, {r.message_id for r in batch.records})
        mark_dirty(conn, (r.contact_id for r in batch.records))
        # click.created with the provisional verdict, for the workspaces that listen.
        click_events(conn, [r.click_id for r in batch.records], now_us())
        for chunk in chunks(batch.rows):
            conn.exec_driver_sql(_in_list(_DELETE_SQL, conn, chunk), tuple(chunk))
    return len(batch.records)


def insert_clicks(
    conn: sa.Connection, records: Sequence[ClickRecord], verdicts: Sequence[Verdict] | None
) -> int:
    """Store clicks, with their provisional verdicts when given (aligned with `records`),
    inside the caller's transaction; return how many were given (a click id already stored is
    skipped). The caller refreshes their messages' click rollup in the same transaction."""
    # Through the driver with one fixed statement and JSON serialised once (orjson):
    # SQLAlchemy's per-row parameter processing cost more than the insert itself.
    vs: Sequence[Verdict | None] = verdicts or ()
    rows = []
    for r, v in itertools.zip_longest(records, vs[: len(records)]):
        rows.append(
            (
                r.click_id, r.token, r.campaign_id, r.link_id, r.message_id, r.contact_id,
                r.at_us, r.method, r.method == "GET", r.ip, r.user_agent,
                orjson.dumps(r.headers).decode(),
                None if v is None else v.verdict, None if v is None else v.score,
                None if v is None else orjson.dumps(list(v.reasons)).decode(),
                None if v is None else v.version,
            )
        )  # fmt: skip
    conn.exec_driver_sql(_INSERT_CLICKS_SQL.format(p=placeholder(conn)), rows)
    return len(rows)
