"""Engines for SQLite (embedded, WAL) and PostgreSQL (psycopg 3), migrations, and storage
outages.

An outage is one error everywhere: whatever the driver says when the database cannot answer
(connection refused or cut, server shutting down, out of connections, SQLite locked past its
busy timeout) is raised as the domain's `StorageUnavailable` by the engine's ``handle_error``
hook, the one place every statement and connection attempt of the engine passes through (the
redirect's raw lookups report theirs with `Outages.failed`). The web answers it 503 with
Retry-After; the log gets one line when an outage starts and one when the database answers
again, with how many operations were refused meanwhile — not a traceback per request.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from clicktrail.domain.errors import StorageUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration. A server whose database is at it never imports Alembic (about 10 MiB
# of a redirect process's memory); tests check it against Alembic's own head.
SCHEMA_HEAD = "0028"


log = logging.getLogger("clicktrail.storage")

# PostgreSQL error classes meaning "the server cannot take work now" (SQLSTATE, first two
# characters): 08 connection exception, 53 insufficient resources (too many connections, disk
# full), 57P0x operator intervention (shutdown, crash recovery, cannot connect now).
_UNAVAILABLE_SQLSTATE = ("08", "53", "57P01", "57P02", "57P03")
UNAVAILABLE_MESSAGE = "the database is not answering; try again shortly"
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")


class Outages:
    """Storage outages as episodes: one log line when the first operation fails, one when the
    database answers again, with how long it was away and how many operations were refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None  # time.monotonic() of the first failure of the episode
        self.refused = 0

    def failed(self, reason: str) -> None:
        """Count one refused operation; the first of an episode logs `reason`."""
        with self._lock:
            self.refused += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning("storage unavailable: %s%s", reason, _process())

    def answered(self) -> None:
        """The database answered: end the episode, if one is going on (cheap when not)."""
        if self.since is not None:
            self._end()

    def _end(self) -> None:
        with self._lock:
            since, refused = self.since, self.refused
            self.since, self.refused = None, 0
        if since is None:
            return  # another thread ended it
        away = time.monotonic() - since
        log.warning(
            "storage back after %.0f s; %s operations refused meanwhile (requests answered 503)%s",
            away, f"{refused:,}", _process(),
        )  # fmt: skip


def _process() -> str:
    # Each process (the server, its workers, the jobs process) has its own connections and
    # says its own outage; the server's lines carry no tag.
    name = multiprocessing.current_process().name
    return "" if name == "MainProcess" else f" [{name}]"


_outages: weakref.WeakKeyDictionary[sa.Engine, Outages] = weakref.WeakKeyDictionary()


def outages_of(engine: sa.Engine) -> Outages:
    """Return the outage episodes of `engine` (made on first use)."""
    found = _outages.get(engine)
    if found is None:
        found = _outages.setdefault(engine, Outages())
    return found


def unavailable_reason(engine: sa.Engine, exc: BaseException) -> str | None:
    """Return why the database cannot answer, when the driver error `exc` (of `engine`'s
    driver) says it cannot; None for any other error (a constraint, a syntax error…)."""
    dbapi = engine.dialect.loaded_dbapi
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, dbapi.InterfaceError):
        return text  # the connection is closed or broken
    if not isinstance(exc, dbapi.OperationalError):
        return None
    if engine.dialect.name == "sqlite":
        return text if text.lower().startswith(_SQLITE_UNAVAILABLE) else None
    sqlstate = getattr(exc, "sqlstate", None)
    # No SQLSTATE: it failed on the client's side (connection refused, cut or timed out).
    return text if sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE) else None


def raise_if_unavailable(engine: sa.Engine, exc: BaseException) -> None:
    """Raise `StorageUnavailable` from `exc` (counted in the engine's outage) when the driver
    error `exc` says the database cannot answer; return otherwise. For code on raw DBAPI
    connections, which the engine's ``handle_error`` hook does not see."""
    reason = unavailable_reason(engine, exc)
    if reason is not None:
        outages_of(engine).failed(reason)
        raise StorageUnavailable(UNAVAILABLE_MESSAGE) from exc


def _translate_errors(engine: sa.Engine) -> None:
    outages = outages_of(engine)

    def on_error(ctx: sa.engine.ExceptionContext) -> None:
        exc = ctx.original_exception
        reason = None if exc is None else unavailable_reason(engine, exc)
        if reason is None and ctx.is_disconnect:
            reason = str(ctx.original_exception or ctx.sqlalchemy_exception)
        if reason is not None:
            outages.failed(reason)
            # The reason (hosts, ports) goes to the log, not to whoever made the request.
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from ctx.sqlalchemy_exception

    def on_checkout(*_args: Any) -> None:
        outages.answered()

    sa.event.listen(engine, "handle_error", on_error)
    # A connection handed out (after its pre-ping, or freshly made): the database answers.
    sa.event.listen(engine, "checkout", on_checkout)


def check_ready(engine: sa.Engine) -> None:
    """Run ``SELECT 1``; raises `StorageUnavailable` when the database does not answer."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Return an engine for `url`, tuned per backend; SQLite's folder is created if missing.
    Driver errors that mean the database cannot answer are raised as `StorageUnavailable`."""
    engine = _create_engine(url, **kwargs)
    _translate_errors(engine)
    return engine


def _create_engine(url: str, **kwargs: Any) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No server-side prepared statements by default: psycopg prepares a query after 5 runs and
    # PostgreSQL may then keep a generic plan made while a table was still empty (a bulk
    # import turned quadratic that way). The redirect's lookup opts back in (storage/resolver).
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        # Bounded waits on a server that stops answering: connection set-up, and unacknowledged
        # data on an established connection (libpq's tcp_user_timeout, Linux).
        connect_args={"prepare_threshold": None, "connect_timeout": 3, "tcp_user_timeout": 5000},
        **kwargs,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the redirect read while a writer commits; synchronous=NORMAL keeps every commit
    # safe from a process crash (only an OS crash can lose the last transactions).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(engine: sa.Engine) -> Config:
    """Return an Alembic config bound to `engine` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Bring the schema of `engine`'s database to the newest migration."""
    if schema_version(engine) == SCHEMA_HEAD:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def schema_version(engine: sa.Engine) -> str | None:
    """Return the database's migration revision (None: not migrated yet)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
