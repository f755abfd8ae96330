"""`clicktrail serve` with a stream configured, as real processes: an event written by another
clicktrail process (a CLI command) reaches the broker through the jobs process's publisher."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streams.brokers_read import Broker, Entry, open_broker

pytestmark = pytest.mark.e2e
# (`env` and `server_factory` are tests/e2e/conftest.py's fixtures: Env and Server there.)


@pytest.fixture(params=["nats", "redis"])
def stream_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    yield from open_broker(request.param)


def _wait_for(broker: Broker, n: int) -> list[Entry]:
    deadline = time.monotonic() + 30
    got = broker.read()
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.3)
        got = broker.read()
    return got


# SQLite only: the publisher on PostgreSQL is tests/streams/ (this adds the processes' wiring).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_streams_what_every_process_writes(
    env: Any, server_factory: Any, stream_broker: Broker
) -> None:
    b = stream_broker
    stream = {"CLICKTRAIL_STREAM_URL": b.url, "CLICKTRAIL_STREAM_PREFIX": b.prefix,
              "CLICKTRAIL_STREAM_NAME": b.stream}  # fmt: skip
    env.cli("workspace", "create", "Acme Retail", "--slug", "acme")
    server = server_factory(env, settings=stream)
    env.cli("opt-outs", "add", "+14155550123", settings=stream)
    env.cli("opt-outs", "add", "+14155550124")  # a process without the setting writes no event
    env.cli("opt-outs", "remove", "+14155550123", settings=stream)
    got = _wait_for(b, 2)
    server.stop()
    assert [(g.workspace, g.type) for g in got] == [
        ("acme", "contact.opted_out"),
        ("acme", "contact.opted_in"),
    ]
    assert all(g.event_id.startswith("evt_") for g in got)
