"""Conversion ingest speed (issue 16): ``POST /v1/conversions`` batches on SQLite.

Builds a scratch SQLite database in a temporary folder: a workspace with a short domain, an API
key, a campaign sent to ``--contacts`` contacts and ``--clicks`` stored clicks of its link (the
click ids conversions name). Then it starts the real server (``uvicorn --factory
clicktrail.bootstrap:create_app``) as a process of its own, pinned to core 0 when ``taskset``
exists, and posts ``--batches`` batches of 1,000 conversions from this process (core 1): each
with its click id, event, value, currency and a transaction id of its own.

Reported per phase:

- **new**: conversions never seen (each is resolved, dedup-checked and stored);
- **replay**: the same batches again (every one answers ``duplicate``; what a retrying
  network costs);
- **jobs**: what the jobs process then does for the new conversions, in a child of its own:
  attribute them and score their contacts' engagement again (its CPU time, not the server's).

The server runs without the jobs on a thread of its own (as `clicktrail serve` runs it beside
the jobs process), so the two ingest phases count the API's work only.

as conversions per second of wall time (one client, batches one after another) and per second
of the server process's CPU time (user + system, from /proc: conversions per core-second).

The in-run anchor is the storage floor on the same machine and rows: the same conversion rows
inserted with a plain ``executemany`` INSERT into a copy of the ``conversions`` table with its
unique dedup index (one transaction, no HTTP, no JSON, no resolving, no dedup answer), wall and
CPU time of this process.

On a busy machine wall time measures the neighbours; CPU seconds of the server process are the
per-core figure.

    .venv/bin/python bench/conversion_ingest.py
    .venv/bin/python bench/conversion_ingest.py --batches 50
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.clicks import ClickRecord
from clicktrail.domain.models import ContactInput
from clicktrail.services import campaigns, keys, workspaces
from clicktrail.services.sending import send_campaign
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from clicktrail.web.redirect import new_click_id

BATCH = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build(url: str, tmp: Path, contacts: int, clicks: int) -> tuple[str, list[str]]:
    """Create the workspace, campaign and clicks; return (API key, click ids)."""
    container = Container(
        load_settings(env={"CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(tmp)})
    )
    now = time.time_ns() // 1000
    ws = workspaces.create_workspace(container.workspaces, "Bench", now)
    workspaces.add_domain(container.workspaces, ws, "sms.example.com", now)
    key = keys.create_key(container.keys, ws, "bench", now).secret
    people = [ContactInput(f"+1415{200 + i // 10000:03d}{i % 10000:04d}", f"c-{i}", None, {})
              for i in range(contacts)]  # fmt: skip
    container.contacts.upsert_contacts(ws.id, people, "all", now)
    cp = campaigns.create_campaign(container, ws, name="Sale", template="Sale https://shop.example.com/",
                                   list_name="all", now_us=now)  # fmt: skip
    send_campaign(container, ws, cp, OutboxProvider(tmp / "outbox.jsonl"), clock=lambda: now)
    with container.engine.connect() as conn:
        targets = conn.execute(
            sa.select(t.tokens.c.token, t.tokens.c.link_id, t.tokens.c.message_id,
                      t.tokens.c.contact_id)
        ).all()  # fmt: skip
    ids: list[str] = []
    records = []
    for i in range(clicks):
        token, link_id, message_id, contact_id = targets[i % len(targets)]
        cid = new_click_id()
        ids.append(cid)
        records.append(ClickRecord(cid, token, cp.id, link_id, message_id, contact_id,
                                   now - 60_000_000, "GET", "198.51.100.1", "Mozilla/5.0", {}))  # fmt: skip
    for i in range(0, len(records), 5000):
        container.clicks.insert_clicks(records[i : i + 5000])
    container.dispose()
    return key, ids


def bodies(ids: list[str], batches: int) -> list[bytes]:
    """The request bodies: `batches` × 1,000 conversions, each with a transaction id."""
    out = []
    for b in range(batches):
        items = [{"click_id": ids[(b * BATCH + i) % len(ids)], "event": "purchase",
                  "value": f"{(b * BATCH + i) % 100}.99", "currency": "USD",
                  "txn": f"order-{b}-{i}"} for i in range(BATCH)]  # fmt: skip
        out.append(orjson.dumps({"conversions": items}))
    return out


def post_all(
    base: str, key: str, payloads: list[bytes], pid: int, expect: str
) -> tuple[float, float]:
    """Post every payload in turn; return (wall seconds, server CPU seconds)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
        for body in payloads:
            r = client.post("/v1/conversions", content=body)
            assert r.status_code == 200, r.text[:300]
            counts = r.json()["counts"]
            assert counts == {expect: BATCH}, counts
        return time.perf_counter() - t0, _cpu_seconds(pid) - cpu0


# The API server alone, as `clicktrail serve` runs it beside the jobs process: with the jobs on
# a thread of the server (`uvicorn --factory`), their passes over the conversions just stored
# (attribution, engagement scores) would be counted in whichever phase they happened to overlap.
SERVER = (
    "import uvicorn; from clicktrail.bootstrap import create_app; "
    "uvicorn.run(create_app(jobs_in_process=False), host='127.0.0.1', port={port}, "
    "log_level='warning')"
)
# What the jobs process does afterwards for those conversions, alone in a child of its own:
# attribute every new conversion, then score again every contact they touched.
JOBS = """
import time
from clicktrail.bootstrap import Container, load_settings
from clicktrail.services import engagement
from clicktrail.services.attribution import Attributor
c = Container(load_settings())
t0, c0 = time.perf_counter(), time.process_time()
Attributor(c.attribution).run_pending(time.time_ns() // 1000)
c1 = time.process_time()
rescored = engagement.refresh_dirty(c.engagement, time.time_ns() // 1000)
print(time.perf_counter() - t0, time.process_time() - c0, c1 - c0, rescored)
"""


def jobs_pass(env: dict[str, str], pinned: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the jobs process's passes over the stored conversions."""
    cmd = [sys.executable, "-c", JOBS]
    if pinned:
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    wall, cpu, attributing, rescored = out.split()
    print(f"jobs: attribution {float(attributing):.2f} s CPU, engagement scores of {rescored} "
          f"contacts {float(cpu) - float(attributing):.2f} s CPU")  # fmt: skip
    return float(wall), float(cpu)


def anchor(db: Path, ids: list[str], n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a plain executemany INSERT of `n` conversion rows (one
    transaction) into a copy of the conversions table with its dedup index, same database file
    and settings."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE anchor AS SELECT * FROM conversions WHERE 0")
    conn.execute("CREATE UNIQUE INDEX anchor_key ON anchor (workspace_id, dedup_key)")
    now = time.time_ns() // 1000
    rows = [(i + 1, f"cnv_anchor{i:012d}", 1, "purchase", 99_990_000, "USD", now, now, ids[i % len(ids)],
             1, 1, 1, 1, f"order-{i}", "api", f"txn:purchase:order-{i}", None, None)
            for i in range(n)]  # fmt: skip
    marks = ", ".join("?" * len(rows[0]))
    t0, c0 = time.perf_counter(), time.process_time()
    with conn:
        conn.executemany(f"INSERT INTO anchor VALUES ({marks})", rows)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=30, help="batches of 1,000 per phase")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--clicks", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "bench.db"
        url = f"sqlite:///{db}"
        key, ids = build(url, tmp, args.contacts, args.clicks)
        port = _free_port()
        env = {**os.environ, "CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(tmp),
               "CLICKTRAIL_LOG_LEVEL": "warning"}  # fmt: skip
        cmd = [sys.executable, "-c", SERVER.format(port=port)]
        pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
        if pinned:
            cmd = ["taskset", "-c", "0", *cmd]
            os.sched_setaffinity(0, {1})
        server = subprocess.Popen(cmd, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
            payloads = bodies(ids, args.batches)
            post_all(base, key, payloads[:2], server.pid, "accepted")  # warm-up
            n = (len(payloads) - 2) * BATCH
            results: dict[str, Any] = {}
            results["new"] = post_all(base, key, payloads[2:], server.pid, "accepted")
            results["replay"] = post_all(base, key, payloads[2:], server.pid, "duplicate")
        finally:
            server.terminate()
            server.wait(30)
        results["jobs"] = jobs_pass(env, pinned)
        floor_wall, floor_cpu = anchor(db, ids, n)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; server "
          f"{'pinned to core 0, client on core 1' if pinned else 'not pinned'}")  # fmt: skip
    for phase, (wall, cpu) in results.items():
        who = "jobs CPU" if phase == "jobs" else "server CPU"
        print(f"{phase:7} {n:,} conversions: {wall:.2f} s wall ({n / wall:,.0f}/s), "
              f"{who} {cpu:.2f} s ({n / cpu:,.0f} per core-second)")  # fmt: skip
    print(f"anchor  plain executemany INSERT of the same {n:,} rows: {floor_wall:.2f} s wall "
          f"({n / floor_wall:,.0f}/s), CPU {floor_cpu:.2f} s ({n / floor_cpu:,.0f} per "
          "core-second)")  # fmt: skip


if __name__ == "__main__":
    main()
