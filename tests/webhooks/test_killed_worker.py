"""A webhook worker killed with SIGKILL while its request is in flight (a real process, a real
receiver on 127.0.0.1), on SQLite and PostgreSQL: nothing is lost, and the delivery is sent
again after its lease with the same webhook-id (at least once, never under another id)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from receiver import Receiver

from clicktrail.outbound import WebhookPoster
from clicktrail.services import webhooks
from clicktrail.services.clock import now_us
from clicktrail.services.deliveries import Deliveries
from clicktrail.services.optouts import OptChange
from factories import PYTHONPATH
from inprocess_api import Api

WORKER = """
import sys, time
from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
c = Container(load_settings(), run_migrations=False)
print("ready", flush=True)
while True:
    c.webhook_worker.tick()
    time.sleep(0.05)
"""


def test_a_killed_worker_loses_nothing_and_resends_with_the_same_id(
    hooks: Api, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    api = hooks
    ep = webhooks.create_endpoint(api.container.webhooks, api.ws, receiver.url,
                                  ["contact.opted_out"], now_us(), api.container.outbound.check_url)  # fmt: skip
    receiver.delay = 30.0  # the first answer never comes before the kill
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp_path),
        "CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path),
        "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8", "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1",
        "CLICKTRAIL_WEBHOOK_TIMEOUT": "20",
    }  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        at = now_us()
        api.container.optout_queries.record_opt_changes(
            api.ws.id, [OptChange("+14155550100", True, at, "api")], at
        )
        # (PostgreSQL: once no older transaction on the server holds the outbox back.)
        assert len(receiver.wait_for(1, timeout=600)) == 1
        os.kill(proc.pid, signal.SIGKILL)  # mid-request: claimed, sent, nothing recorded
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    receiver.delay = 0.0
    # Another worker: nothing is due while the dead one's lease (4 x 20 s + 30 s) runs...
    clock = [now_us()]
    worker = Deliveries(api.container.deliveries, WebhookPoster(api.container.outbound),
                        timeout=2.0, clock=lambda: clock[0])  # fmt: skip
    worker.tick()
    assert len(receiver.got) == 1
    # ... and after it, the same event goes out again under the same webhook-id.
    clock[0] += 111 * 1_000_000
    worker.tick()
    got = receiver.wait_for(2)
    assert len(got) == 2
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    assert got[0].body == got[1].body
    got[1].verify(ep.secret)
    (d,) = api.container.deliveries.deliveries_page(api.ws.id, ep.id, None, 10, None)
    assert (d.state, d.attempts) == ("succeeded", 2)
