"""The publisher as a real process killed with SIGKILL while it publishes, then started again:
the broker ends with every event once, in the outbox's order (on both brokers and databases)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from brokers_read import Broker
from test_stream_out import add_events, outbox

from factories import PYTHONPATH, Repos, make_workspace

pytestmark = pytest.mark.slow

PUBLISHER = """
import sys

from clicktrail.brokers import StreamTarget, open_publisher
from clicktrail.services.streams import StreamOut
from clicktrail.storage.database import create_engine
from clicktrail.storage.streams import StreamQueries

url, broker, prefix, stream = sys.argv[1:5]
out = StreamOut(StreamQueries(create_engine(url)), open_publisher(StreamTarget(broker, prefix, stream)),
                batch=40, max_tick_s=0.001)
while out.tick():
    print(out.published, flush=True)
out.close()
print("done", flush=True)
"""


def publisher(database_url: str, broker: Broker) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, database_url, broker.url, broker.prefix, broker.stream],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **PYTHONPATH},
    )  # fmt: skip


def test_a_publisher_killed_mid_run_and_restarted_publishes_each_event_once(
    store: Repos, database_url: str, broker: Broker
) -> None:
    a, b = make_workspace(store), make_workspace(store)
    add_events(store.engine, [a, b], 1000)
    first = publisher(database_url, broker)
    assert first.stdout is not None
    for line in first.stdout:
        if int(line) >= 200:  # a few batches in: kill it wherever it is now
            break
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    first.stdout.close()
    assert first.returncode == -signal.SIGKILL
    partial = len(broker.read())
    assert 200 <= partial < 1000

    second = publisher(database_url, broker)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0 and out.endswith("done\n")
    got = broker.read()
    assert [g.event_id for g in got] == [e.public_id for e in outbox(store.engine)]
