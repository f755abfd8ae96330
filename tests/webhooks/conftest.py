"""Fixtures of the webhook tests: `api`, the whole app over a fresh database (SQLite and
PostgreSQL) with a workspace, its short domain and an API key (tests/inprocess_api.py);
`receiver`, a real HTTP server on 127.0.0.1 (receiver.py); `hooks`, the same app whose
outbound policy allows 127.0.0.0/8 over plain http (the operator's allowance a local receiver
needs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver import Receiver, serve

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from factories import Repos, make_api_key, make_domain, make_workspace
from inprocess_api import HOST, Api, api

__all__ = ["api", "hooks", "receiver"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
def hooks(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        env={
            "CLICKTRAIL_DATABASE_URL": database_url,
            "CLICKTRAIL_DATA_DIR": str(tmp_path),
            "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
            "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "true",
            "CLICKTRAIL_WEBHOOK_TIMEOUT": "2",
        }
    )
    container = Container(settings)
    store = Repos.on(container.engine)
    ws = make_workspace(store)
    make_domain(store, ws, HOST)
    yield Api(container, ws, make_api_key(store, ws))
    container.dispose()
