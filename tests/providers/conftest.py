"""Fixtures of the provider tests: a workspace in a container on SQLite and PostgreSQL (the
`database_url` fixture of tests/conftest.py) and a local fake Twilio (provider_fakes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from provider_fakes import LOCAL_SETTINGS, FakeTwilio
from provider_world import HOST, Env

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from factories import Repos, make_api_key, make_domain, make_workspace


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[Env]:
    settings = load_settings(
        env={
            "CLICKTRAIL_DATABASE_URL": database_url,
            "CLICKTRAIL_DATA_DIR": str(tmp_path),
            **LOCAL_SETTINGS,
        }
    )
    container = Container(settings)
    ws = make_workspace(Repos.on(container.engine))
    make_domain(Repos.on(container.engine), ws, HOST)
    yield Env(container, ws, make_api_key(Repos.on(container.engine), ws), tmp_path, database_url)
    container.dispose()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake
