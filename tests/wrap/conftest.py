"""Fixtures of the wrap-only tests: `api`, the whole app over a fresh database (SQLite and
PostgreSQL) with a workspace, its short domain and an API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wrapapi import HOST, Api

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from factories import make_api_key, make_domain, make_workspace


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    ws = make_workspace(container.store)
    make_domain(container.store, ws, HOST)
    yield Api(container, ws, make_api_key(container.store, ws))
    container.dispose()
