"""Wrap-only API speed (issue 7): ``POST /v1/wrap/batch`` with 10,000 items per call.

Builds a scratch database (SQLite in a temporary folder; with ``--postgres URL`` also a scratch
PostgreSQL database, dropped at the end), a workspace with a short domain and an API key,
serves the real app with uvicorn on 127.0.0.1 and times, per batch of ``--items``:

- **new**: recipients clicktrail does not know yet (each call creates its contacts), each with
  its own text holding two URLs (one personalized per recipient);
- **replay**: the same batch again (a retrying sender: every message is found, none made);
- **known**: recipients already stored, new client_refs (new messages, no new contact).

Each figure is the wall time of the HTTP call as the client sees it (body upload, validation,
wrapping, the one write transaction, the JSON answer), median of ``--repeats`` calls.

    .venv/bin/python bench/wrap_bench.py
    .venv/bin/python bench/wrap_bench.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.services import keys, workspaces


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _items(start: int, n: int, ref: str) -> list[dict[str, Any]]:
    return [
        {
            "to": f"+1415{200 + (start + i) // 10000:03d}{(start + i) % 10000:04d}",
            "text": f"Hi! Order {start + i} shipped: https://shop.example.com/o/{start + i} "
            "Questions: https://help.example.com/faq",
            "client_ref": f"{ref}-{start + i}",
        }
        for i in range(n)
    ]


def run(url: str, items: int, repeats: int, tmp: Path) -> dict[str, list[float]]:
    settings = load_settings(env={"CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(tmp)})
    container = Container(settings)
    ws = workspaces.create_workspace(container.workspaces, "Bench", time.time_ns() // 1000)
    workspaces.add_domain(container.workspaces, ws, "sms.example.com", time.time_ns() // 1000)
    key = keys.create_key(container.keys, ws, "bench", time.time_ns() // 1000).secret
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(container.web_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    times: dict[str, list[float]] = {"new": [], "replay": [], "known": []}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=600,
        ) as client:

            def call(batch: list[dict[str, Any]]) -> float:
                t0 = time.perf_counter()
                r = client.post("/v1/wrap/batch", json={"campaign": {"name": "Bench"},
                                                        "items": batch})  # fmt: skip
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200, r.text[:500]
                assert len(r.json()["items"]) == len(batch)
                return elapsed

            for rep in range(repeats):
                batch = _items(rep * items, items, "a")
                times["new"].append(call(batch))
                times["replay"].append(call(batch))
                times["known"].append(call(_items(rep * items, items, "b")))
    finally:
        server.should_exit = True
        thread.join(30)
        container.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure")
    args = parser.parse_args()
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        targets.append(("sqlite", f"sqlite:///{tmp / 'bench.db'}"))
        admin = None
        name = f"clicktrail_wrapbench_{uuid.uuid4().hex[:8]}"
        if args.postgres:
            admin = sa.create_engine(
                args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            targets.append(("postgresql", args.postgres.rsplit("/", 1)[0] + "/" + name))
        try:
            for label, url in targets:
                times = run(url, args.items, args.repeats, tmp / label)
                for what, values in times.items():
                    med = statistics.median(values)
                    print(
                        f"{label:10} {what:6} {args.items} items: median {med:.2f} s "
                        f"({args.items / med:,.0f} items/s); runs "
                        + ", ".join(f"{v:.2f}" for v in values)
                    )
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
