"""Stream-out throughput (issue 17): outbox events per second published to NATS JetStream and to
Redis Streams by the jobs process's publisher (`services.streams.StreamOut`).

Builds a scratch SQLite database (or ``--database-url``), ``--workspaces`` workspaces and
``--events`` events in the outbox (round robin over the workspaces, in transactions of 1,000,
each a ``click.created`` body of about 600 bytes as the click writer makes them), then drains the
outbox to each broker in turn with a cursor of its own: batches of 1,000 read in commit order,
published (JetStream: pipelined ``publish_async`` with ``Nats-Msg-Id``, every acknowledgement
awaited; Redis: one Lua script of XADDs per batch), the cursor moved after each. Each broker gets
a stream or keys named for this run, deleted afterwards.

Reported per broker: events per second of wall time from the first read to the last cursor move,
this process's CPU seconds over the same span (events per core-second), and what the broker
holds afterwards (equal to the events: nothing lost, nothing twice). The publisher shares the
machine with the broker (both on loopback).

    .venv/bin/python bench/stream_bench.py --quick          # 5,000 events
    .venv/bin/python bench/stream_bench.py --events 50000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import nats
import redis
import sqlalchemy as sa

from clicktrail.brokers import StreamTarget, open_publisher
from clicktrail.domain import events as ev
from clicktrail.services import workspaces
from clicktrail.services.streams import CONSUMER, StreamOut
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.events import append_events
from clicktrail.storage.streams import StreamQueries
from clicktrail.storage.workspaces import WorkspaceQueries

NOW_US = 1_780_000_000_000_000


def fill(engine: sa.Engine, n_ws: int, n: int) -> None:
    """Write `n` click-like events round robin over `n_ws` new workspaces."""
    store = WorkspaceQueries(engine)
    ids = [workspaces.create_workspace(store, f"Bench {i}", NOW_US).id for i in range(n_ws)]
    for lo in range(0, n, 1000):
        batch = []
        for i in range(lo, min(lo + 1000, n)):
            data = {
                "click_id": f"clk_{i:024d}", "occurred_at": ev.iso(NOW_US + i),
                "campaign": "summer-sale", "message": f"msg_{i:024d}",
                "contact": {"phone": f"+1415555{i % 10000:04d}", "external_id": f"ext-{i}"},
                "link": {"index": 0, "url": "https://shop.example.com/sale?utm_source=sms"},
                "is_click": True,
                "verdict": ev.verdict_data("human", ["ua:browser", "net:residential"], 92, False),
            }  # fmt: skip
            batch.append(ev.event(ids[i % n_ws], ev.CLICK_CREATED, f"c{i}/provisional", NOW_US + i, data))  # fmt: skip
        with engine.begin() as conn:
            append_events(conn, batch, NOW_US)


def held(kind: str, url: str, target: StreamTarget) -> int:
    """How many entries the broker holds for `target` (and drop them)."""
    if kind == "nats":

        async def count() -> int:
            nc = await nats.connect(url)
            js = nc.jetstream()
            n = (await js.stream_info(target.stream)).state.messages
            await js.delete_stream(target.stream)
            await nc.close()
            return int(n)

        return asyncio.run(count())
    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(f"{target.prefix}:*"))
    n = sum(int(r.xlen(k)) for k in keys)
    if keys:
        r.delete(*keys)
    r.close()
    return n


def drain(engine: sa.Engine, kind: str, url: str, n: int) -> dict[str, float]:
    """Publish the whole outbox to one broker from a fresh cursor; return its figures."""
    tag = uuid.uuid4().hex[:8]
    target = StreamTarget(url, f"bench{tag}", f"BENCH{tag}".upper())
    consumer = f"{CONSUMER}-{kind}-{tag}"
    out = StreamOut(StreamQueries(engine), open_publisher(target), consumer=consumer,
                    max_tick_s=3600)  # fmt: skip
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        passed = out.tick()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        out.close()
    if passed != n or out.failures:
        raise SystemExit(f"{kind}: passed {passed} of {n} events, {out.failures} failures")
    return {
        "events/s": n / wall,
        "per core-s": n / cpu,
        "wall s": wall,
        "held": held(kind, url, target),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5,000 events")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--workspaces", type=int, default=4)
    p.add_argument("--database-url", default="")
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    a = p.parse_args()
    n = 5_000 if a.quick else a.events
    with tempfile.TemporaryDirectory() as tmp:
        url = a.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_engine(url)
        migrate(engine)
        t0 = time.perf_counter()
        fill(engine, a.workspaces, n)
        print(f"{n:,} events in the outbox in {time.perf_counter() - t0:.1f} s "
              f"({engine.dialect.name}, {a.workspaces} workspaces)")  # fmt: skip
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
        print("| broker | events/s (wall) | events per core-second | wall s | held by the broker |")
        print("|---|---:|---:|---:|---:|")
        for kind, burl in (("nats", a.nats), ("redis", a.redis)):
            f = drain(engine, kind, burl, n)
            print(f"| {kind} | {f['events/s']:,.0f} | {f['per core-s']:,.0f} | "
                  f"{f['wall s']:.2f} | {int(f['held']):,} |")  # fmt: skip
        print(f"load after: {os.getloadavg()[0]:.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
