"""Fixtures of the stream-out tests: `broker`, a real NATS JetStream or Redis server (in turn)
with a stream name and prefix of the test's own, read back as a consumer would.

NATS runs at 127.0.0.1:4222 and Redis at 127.0.0.1:6379 (override with
CLICKTRAIL_TEST_NATS_URL and CLICKTRAIL_TEST_REDIS_URL). Like PostgreSQL (tests/conftest.py):
unreachable, the tests are skipped with the reason, unless CLICKTRAIL_TEST_POSTGRES=1 (set by
.ci/run), which makes every server of the machine mandatory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from brokers_read import Broker, open_broker


@pytest.fixture(params=["nats", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A real broker, emptied of this test's stream and keys after it."""
    yield from open_broker(request.param)
