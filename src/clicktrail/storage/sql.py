"""Dialect helpers shared by the storage modules: chunked IN lists, insert-or-ignore, upserts
and fast bulk inserts (COPY on PostgreSQL).

clicktrail runs on SQLite and PostgreSQL through SQLAlchemy Core; the few statements whose
spelling differs between them are built here, once, so each area module keeps only its SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_T = TypeVar("_T")

# Rows per IN list or per statement: well under SQLite's bound-parameter limit (32,766) and
# PostgreSQL's (65,535) even with several columns per row.
CHUNK = 1000


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """Yield `items` in consecutive slices of at most `size`."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def is_postgres(bind: sa.Engine | sa.Connection) -> bool:
    """Return whether `bind` talks to PostgreSQL (otherwise SQLite)."""
    return bind.dialect.name == "postgresql"


def _insert(bind: sa.Engine | sa.Connection, table: sa.Table) -> Any:
    return postgresql.insert(table) if is_postgres(bind) else sqlite.insert(table)


def insert_ignore(bind: sa.Engine | sa.Connection, table: sa.Table) -> Any:
    """Return an INSERT into `table` that skips rows clashing with a unique key
    (ON CONFLICT DO NOTHING, spelled for `bind`'s dialect)."""
    return _insert(bind, table).on_conflict_do_nothing()


def upsert(
    bind: sa.Engine | sa.Connection,
    table: sa.Table,
    values: Mapping[str, Any],
    key: Sequence[sa.Column[Any] | str],
    set_: Mapping[Any, Any],
) -> Any:
    """Return an INSERT of `values` into `table` that, when a row with the same `key` exists,
    updates it with `set_` instead (ON CONFLICT … DO UPDATE)."""
    return (
        _insert(bind, table).values(**values).on_conflict_do_update(index_elements=key, set_=set_)
    )


def upsert_many(bind: sa.Engine | sa.Connection, table: sa.Table, key: Sequence[str]) -> Any:
    """Return an INSERT into `table` that, when a row with the same `key` exists, overwrites
    its other columns with the new values: executed with a list of rows, one statement for
    all of them (executemany), where `upsert` is one per row."""
    stmt = _insert(bind, table)
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in key},
    )


def copy_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (plain values, the same keys each) with PostgreSQL's COPY FROM STDIN."""
    cols = list(rows[0])
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(
            f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"  # names from our own tables
        ) as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in cols])


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows fast: COPY on PostgreSQL, executemany on SQLite."""
    if is_postgres(conn):
        copy_rows(conn, table, rows)
    else:
        conn.execute(table.insert(), rows)


def driver_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of plain values: COPY on PostgreSQL; on SQLite the driver's executemany
    with tuples, which skips SQLAlchemy's per-row parameter processing (half the write time of
    a 10,000-message batch)."""
    if is_postgres(conn):
        copy_rows(conn, table, rows)
        return
    cols = list(rows[0])
    sql = (
        f"INSERT INTO {table.name} ({', '.join(cols)}) "  # names from our own tables
        f"VALUES ({', '.join('?' * len(cols))})"
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    values = itemgetter(*cols) if len(cols) > 1 else lambda r: (r[cols[0]],)
    raw.executemany(sql, [values(r) for r in rows])


def insert_tuples(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (tuples of plain values in the order of `columns`) as fast as the driver
    can: COPY on PostgreSQL, executemany on SQLite; no per-row mapping is built."""
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(columns)  # names from our own tables
    if is_postgres(conn):
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    raw.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def placeholder(conn: sa.Connection) -> str:
    """Return the driver's positional placeholder for raw SQL (``?`` or ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"
