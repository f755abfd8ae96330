"""Webhook delivery throughput (issue 17): events per second from the outbox to a local receiver.

Builds a scratch database (SQLite in a temporary folder, or ``--database-url``), a workspace
with one webhook endpoint subscribed to ``contact.opted_out`` and ``--events`` opt-outs of
distinct contacts recorded through the real writer (``OptOutQueries.record_opt_changes``, in
batches of 1,000: each writes its events in its own transaction). The receiver is uvicorn
serving a bare ASGI app that answers 204 to everything, in a process of its own (pinned to core
1 when ``taskset`` exists); the delivery worker (`services.deliveries.Deliveries`, as the jobs
process runs it: fan-out by cursor, claims of 500, ``--concurrency`` threads of pooled httpx
clients under the outbound policy, every request signed with ``standardwebhooks``, the outcome
and the log written per batch) runs in this process, pinned to core 0.

Reported: events delivered per second of wall time from the first fan-out to the last recorded
outcome, the worker process's CPU seconds over the same span (events per core-second), and the
receiver's count (every request it answered; equal to the events when nothing was sent twice).

    .venv/bin/python bench/webhooks.py
    .venv/bin/python bench/webhooks.py --events 50000 --concurrency 32
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.services import webhooks, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import OptChange

RECEIVER = """
import sys, uvicorn
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    if scope["path"] == "/count":
        body = str(count).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    count += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, http="httptools")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ct-webhooks-bench-"))
    port = _free_port()
    taskset = shutil.which("taskset")
    recv_cmd = [sys.executable, "-c", RECEIVER, str(port)]
    receiver = subprocess.Popen([taskset, "-c", "1", *recv_cmd] if taskset else recv_cmd)
    if taskset:
        os.sched_setaffinity(0, {0})
    try:
        env = {
            "CLICKTRAIL_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db",
            "CLICKTRAIL_DATA_DIR": str(tmp),
            "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
            "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "true",
            "CLICKTRAIL_WEBHOOK_CONCURRENCY": str(args.concurrency),
        }
        c = Container(load_settings(env=env))
        ws = workspaces.create_workspace(c.workspaces, "Bench", now_us())
        url = f"http://127.0.0.1:{port}/hook"
        webhooks.create_endpoint(c.webhooks, ws, url, ["contact.opted_out"], now_us(),
                                 c.outbound.check_url)  # fmt: skip
        t0 = time.perf_counter()
        for start in range(0, args.events, 1000):
            at = now_us()
            changes = [OptChange(f"+1415{i:07d}", True, at, "api")
                       for i in range(start, min(args.events, start + 1000))]  # fmt: skip
            c.optout_queries.record_opt_changes(ws.id, changes, at)
        written = time.perf_counter() - t0
        deadline = time.monotonic() + 30
        while True:  # the receiver is up
            try:
                httpx.get(f"http://127.0.0.1:{port}/count")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "receiver did not start"
                time.sleep(0.1)
        worker = c.webhook_worker
        worker.max_tick_s = 3600.0
        cpu0, w0 = _cpu_s(), time.perf_counter()
        attempts = worker.tick()
        wall, cpu = time.perf_counter() - w0, _cpu_s() - cpu0
        got = int(httpx.get(f"http://127.0.0.1:{port}/count").text)
        worker.close()
        c.dispose()
    finally:
        receiver.terminate()
        receiver.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {db}")
    print(f"events written: {args.events:,} in {written:.2f} s (opt-outs, batches of 1,000)")
    print(f"delivered: {attempts:,} attempts, receiver answered {got:,}")
    print(f"wall: {wall:.2f} s -> {attempts / wall:,.0f} events/s "
          f"(concurrency {args.concurrency})")  # fmt: skip
    print(f"worker CPU: {cpu:.2f} s -> {attempts / cpu:,.0f} events per core-second")


if __name__ == "__main__":
    main()
