"""Shared fixtures: a fresh database per test on SQLite and, when reachable, PostgreSQL.

PostgreSQL: one throwaway database per test session (and per xdist worker), migrated once,
tables emptied before each test. It runs at 127.0.0.1:5432 (override with
CLICKTRAIL_TEST_POSTGRES_URL). With CLICKTRAIL_TEST_POSTGRES=1 (set by .ci/run) an unreachable
server fails the run; otherwise those variants are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from clicktrail.storage import tables
from clicktrail.storage.database import create_engine, migrate
from factories import Repos

PG_ADMIN_URL = os.environ.get(
    "CLICKTRAIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_REQUIRED = os.environ.get("CLICKTRAIL_TEST_POSTGRES", "") not in ("", "0", "false")


def _pg_available() -> str | None:
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
    except Exception as exc:
        return (
            f"PostgreSQL not reachable at {PG_ADMIN_URL.split('@')[-1]}: {exc.__class__.__name__}"
        )
    return None


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    reason = _pg_available()
    if reason:
        if PG_REQUIRED:
            pytest.fail(f"CLICKTRAIL_TEST_POSTGRES is set but {reason}")
        pytest.skip(reason)
    name = f"clicktrail_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating per test is slower)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated database: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "clicktrail.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database_url")
    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in tables.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema): a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base: str = request.getfixturevalue("pg_database_url")  # skips or fails like the others
    name = f"clicktrail_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on the test database."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> Repos:
    """Every area's repository on the test database (`factories.Repos`)."""
    return Repos.on(engine)
