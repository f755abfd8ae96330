"""Benchmark: the sustained send rate of a sending job, rate limit off.

Builds a scratch database (SQLite by default) with N contacts and a one-link campaign, then runs
the real sending job (`services.sending.Sending`, the code `clicktrail campaign send` runs) in
this process through

* the **outbox** provider (one JSON line per message, one fsync per batch), and
* the generic **HTTP** provider against a local aggregator endpoint (uvicorn in a child
  process on 127.0.0.1, answering each ``POST /send`` with a message id and honouring an
  ``Idempotency-Key`` header): one HTTP request per message, as real aggregators take them.

Wrapping and sending are timed apart (progress events): the send rate is messages handed over
and recorded per second after the last message was wrapped.

    .venv/bin/python bench/send_rate.py --messages 100000
    .venv/bin/python bench/send_rate.py --messages 20000 --batch-size 100 --providers http
    .venv/bin/python bench/send_rate.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

AREAS = ["202", "212", "312", "415", "617", "713", "206", "303", "404", "503"]


# -- the aggregator endpoint (child process) ------------------------------------------------------


def serve_aggregator(port: int) -> None:
    """A minimal SMS API: every POST gets ``{"message_id": …}``; repeats of a key the same."""
    import orjson
    import uvicorn

    seen: dict[bytes, bytes] = {}
    count = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal count
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        key = dict(scope["headers"]).get(b"idempotency-key", b"")
        answer = seen.get(key) if key else None
        if answer is None:
            count += 1
            answer = orjson.dumps({"message_id": f"agg-{count}"})
            if key:
                seen[key] = answer
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http="httptools", loop="uvloop", lifespan="on", server_header=False)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the measurement -------------------------------------------------------------------------------


def measure(
    db_url: str, data: Path, provider_kind: str, n: int, batch: int, port: int
) -> dict[str, float]:
    from clicktrail.bootstrap import Container
    from clicktrail.config import load_settings
    from clicktrail.domain.models import ContactInput
    from clicktrail.services import campaigns, providers, workspaces
    from clicktrail.services.clock import now_us
    from clicktrail.services.sending import JobSpec

    # The local aggregator listens on 127.0.0.1 over http: allowed, as an operator would.
    container = Container(
        load_settings(
            env={
                "CLICKTRAIL_DATABASE_URL": db_url,
                "CLICKTRAIL_DATA_DIR": str(data),
                "CLICKTRAIL_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
                "CLICKTRAIL_OUTBOUND_ALLOW_HTTP": "1",
            }
        )
    )
    ws = workspaces.create_workspace(container.workspaces, f"Bench {provider_kind}", now_us())
    workspaces.add_domain(container.workspaces, ws, f"{provider_kind}.bench.example", now_us())
    contacts = [
        ContactInput(f"+1{AREAS[i // 10_000 % 10]}555{i % 10_000:04d}", f"c{i}", f"N{i}", {})
        for i in range(n)
    ]
    for i in range(0, n, 10_000):
        container.contacts.upsert_contacts(ws.id, contacts[i : i + 10_000], None, now_us())
    cp = campaigns.create_campaign(
        container, ws, name=f"Rate {provider_kind}", now_us=now_us(),
        template="Hi {first_name}, new arrivals: https://shop.example.com/new",
    )  # fmt: skip
    name = "outbox"
    if provider_kind == "http":
        name = "agg"
        providers.add_provider(
            container.provider_repo, container.provider_kinds, ws, name=name, kind="http",
            options={"request": {"url": f"http://127.0.0.1:{port}/send",
                                 "body": {"to": "{to}", "text": "{body}", "ref": "{message_id}"},
                                 "idempotency_header": "Idempotency-Key"},
                     "response": {"message_id": "message_id"}},
            now_us=now_us(),
        )  # fmt: skip
    sending = container.sending
    sender = sending.provider_for(ws, name)
    marks: dict[str, float] = {}
    counts = {"wrapped": 0, "sent": 0}

    def progress(stage: str, k: int) -> None:
        counts[stage] += k
        marks[stage] = time.perf_counter()

    start = time.perf_counter()
    summary = sending.send(
        ws, cp, sender, spec=JobSpec(rate=0), progress=progress, batch_size=batch
    )
    end = time.perf_counter()
    assert summary.state == "done", summary
    assert summary.sent == n, summary
    if provider_kind == "outbox":
        lines = container.settings.resolved_outbox_path.read_bytes().count(b"\n")
        assert lines == n, lines
    container.dispose()
    wrap_s = marks["wrapped"] - start
    send_s = end - marks["wrapped"]
    return {"wrap_s": wrap_s, "wrap_rate": n / wrap_s, "send_s": send_s, "send_rate": n / send_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=100, help="messages per provider call")
    ap.add_argument("--providers", default="outbox,http")
    ap.add_argument(
        "--database-url", default="", help="PostgreSQL admin URL; a scratch database is made"
    )
    ap.add_argument("--serve-aggregator", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_aggregator:
        serve_aggregator(args.serve_aggregator)
        return

    port = _free_port()
    agg = subprocess.Popen([sys.executable, __file__, "--serve-aggregator", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "aggregator did not start"
                time.sleep(0.05)
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
        print(f"{args.messages} messages, batches of {args.batch_size}, rate limit off")
        print("| provider | database | wrap s (msg/s) | send s | send msg/s |")
        print("|---|---|---:|---:|---:|")
        for kind in args.providers.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp)
                admin = None
                pg_name = ""
                if args.database_url:
                    pg_name = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
                    admin = sa.create_engine(
                        args.database_url.replace("postgresql://", "postgresql+psycopg://"),
                        isolation_level="AUTOCOMMIT",
                    )
                    with admin.connect() as c:
                        c.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
                    db_url = args.database_url.rsplit("/", 1)[0] + "/" + pg_name
                else:
                    db_url = f"sqlite:///{data / 'bench.db'}"
                try:
                    r = measure(db_url, data, kind, args.messages, args.batch_size, port)
                finally:
                    if admin is not None:
                        with admin.connect() as c:
                            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
                        admin.dispose()
                db = "PostgreSQL" if args.database_url else "SQLite"
                print(f"| {kind} | {db} | {r['wrap_s']:.2f} ({r['wrap_rate']:,.0f}) | "
                      f"{r['send_s']:.2f} | {r['send_rate']:,.0f} |", flush=True)  # fmt: skip
    finally:
        agg.terminate()
        agg.wait(timeout=10)


if __name__ == "__main__":
    main()
