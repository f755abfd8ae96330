"""A database that cannot answer is one error, `StorageUnavailable`, said once per outage;
other database errors stay what they are."""

from __future__ import annotations

import logging
import socket

import pytest
import sqlalchemy as sa

from clicktrail.domain.errors import StorageUnavailable
from clicktrail.storage.database import UNAVAILABLE_MESSAGE, create_engine


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens there once closed


def test_a_postgres_that_refuses_connections_is_storage_unavailable_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="clicktrail.storage")
    engine = create_engine(f"postgresql+psycopg://clicktrail@127.0.0.1:{_closed_port()}/x")
    for _ in range(3):
        with pytest.raises(StorageUnavailable) as caught, engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        # What a client sees names no host or port.
        assert caught.value.message == UNAVAILABLE_MESSAGE
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("storage unavailable: "), said
    engine.dispose()


def test_other_database_errors_are_not_an_outage(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clicktrail.storage")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        # SQLite says "no such table" with the same class as "database is locked".
        with pytest.raises(sa.exc.DBAPIError) as caught:
            conn.exec_driver_sql("SELECT * FROM no_such_table")
        assert not isinstance(caught.value, StorageUnavailable)
        conn.rollback()
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert not caplog.records
    engine.dispose()
