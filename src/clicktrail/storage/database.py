"""Engines for SQLite (embedded, WAL) and PostgreSQL (psycopg 3), and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration. A server whose database is at it never imports Alembic (about 10 MiB
# of a redirect process's memory); tests check it against Alembic's own head.
SCHEMA_HEAD = "0014"


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Return an engine for `url`, tuned per backend; SQLite's folder is created if missing."""
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
