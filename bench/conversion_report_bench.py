"""The conversions report of a 1,000,000-message campaign (issue 16: under 0.5 s), on SQLite and
PostgreSQL, beside in-run anchors.

Builds a scratch database with the real migrations and bulk-loads the campaign of
`report_bench.py` (`--messages` messages, 93 % delivered, `--clicks` requests with bot verdicts,
three links: cta, other, opt-out; the click rollup rebuilt), then `--conversions` conversions of
its contacts: two thirds up to 3 days after one of the contact's human clicks, the rest at random
times in the campaign's first 10 days (views, or nothing); values 19.99 / 49.00 / 120.50 USD,
30 EUR, or none. Credits come from the real attribution code (`services.attribution.reattribute`
of the workspace, every model; timed as `attribute_s`). Then, interleaved `--runs` times so that
a loaded machine slows all of them alike:

* `conversions`: `services.attribution.campaign_conversions` (what
  ``GET /v1/campaigns/{c}/report/conversions`` serves without ``multi_touch``);
* the anchors: `click_report`, the campaign's click report alone
  (`services.reports.campaign_report`), and `count`, a bare count of the campaign's messages by
  status and of its requests (`report_bench.py`'s baseline: the least report imaginable).

With `--multi-touch-runs N`, the report with ``multi_touch=true`` (the workspace's multi-touch
credit computed when read, `services.multitouch.channel_report`) is timed N times as well.

    .venv/bin/python bench/conversion_report_bench.py                 # 1M messages, both DBs
    .venv/bin/python bench/conversion_report_bench.py --only sqlite --messages 200000 \
        --clicks 40000 --conversions 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_bench
from clicktrail.domain.models import Workspace
from clicktrail.services import attribution, multitouch, reports
from clicktrail.signals import ua_facts
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.multitouch import MultiTouchQueries
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.rollup import rebuild_click_rollup

T0, D = report_bench.T0, 86_400_000_000
VALUES = [(19_990_000, "USD"), (49_000_000, "USD"), (120_500_000, "USD"), (30_000_000, "EUR"),
          (None, None)]  # fmt: skip
CONVERSION_COLUMNS = (
    "id, public_id, workspace_id, event, value_micros, currency, occurred_us, received_us, "
    "contact_id, source, dedup_key"
)


def _conversions(
    n: int, messages: int, clicks: list[tuple[int, int]], rng: random.Random
) -> Iterator[tuple[object, ...]]:
    for k in range(n):
        if k % 3 < 2 and clicks:
            contact, at = clicks[rng.randrange(len(clicks))]
            at += rng.randrange(3 * D)
        else:
            contact, at = rng.randrange(messages) + 1, T0 + rng.randrange(10 * D)
        value, currency = rng.choice(VALUES)
        yield (k + 1, f"cv_{k:012d}", 1, "purchase", value, currency, at, at, contact, "api",
               f"k{k}")  # fmt: skip


def load(engine: sa.Engine, args: argparse.Namespace) -> None:
    """The campaign of report_bench.py, its click rollup, then the conversions."""
    report_bench.load(engine, args.messages, args.clicks)
    with engine.begin() as conn:
        rebuild_click_rollup(conn)
        human = [
            (int(c), int(at))
            for c, at in conn.execute(
                sa.text(
                    "SELECT contact_id, at_us FROM clicks WHERE verdict = 'human' AND is_click "
                    "ORDER BY id"
                )
            )
        ]
    rows = _conversions(args.conversions, args.messages, human, random.Random(16))
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            marks = ", ".join("?" * len(CONVERSION_COLUMNS.split(",")))
            cur.executemany(
                f"INSERT INTO conversions ({CONVERSION_COLUMNS}) VALUES ({marks})", rows
            )
        else:
            with cur.copy(f"COPY conversions ({CONVERSION_COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            cur.execute("SELECT setval(pg_get_serial_sequence('conversions', 'id'), "
                        "(SELECT max(id) FROM conversions))")  # fmt: skip
        raw.commit()
    finally:
        raw.close()


def analyze(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        pg = engine.dialect.name == "postgresql"
        conn.execute(sa.text("VACUUM ANALYZE" if pg else "ANALYZE"))


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t)


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 1), "p95": round(report_bench.p95(xs), 1)}


def bench(url: str, name: str, args: argparse.Namespace) -> dict[str, object]:
    engine = create_engine(url)
    migrate(engine)
    t = time.perf_counter()
    load(engine, args)
    analyze(engine)
    load_s = time.perf_counter() - t
    store = AttributionQueries(engine)
    queries = ReportQueries(engine, ua_facts=ua_facts)
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    now = T0 + 30 * D
    t = time.perf_counter()
    done = attribution.reattribute(store, ws.id, now)
    attribute_s = time.perf_counter() - t
    assert done.reattributed == [ws.id], done
    analyze(engine)

    def count() -> object:
        with engine.connect() as conn:
            conn.execute(sa.text(
                "SELECT status, count(*) FROM messages WHERE campaign_id = 1 GROUP BY status"
            )).all()  # fmt: skip
            return conn.execute(sa.text("SELECT count(*) FROM clicks WHERE campaign_id = 1")).one()

    def conversions() -> object:
        return attribution.campaign_conversions(store, queries, ws, "big")

    def click_report() -> object:
        return reports.campaign_report(queries, ws, "big")

    multi = MultiTouchQueries(engine)

    def with_multi_touch() -> object:
        rep = attribution.campaign_conversions(store, queries, ws, "big")
        shares = multitouch.channel_report(multi, ws)
        return multitouch.campaign_share(shares, rep.campaign)

    rounds: dict[str, list[float]] = {"conversions": [], "click_report": [], "count": []}
    conversions()  # warm: the first read of a freshly loaded database is not the steady state
    for _ in range(args.runs):
        for key, fn in (("count", count), ("click_report", click_report),
                        ("conversions", conversions)):  # fmt: skip
            rounds[key].append(timed(fn))
    multi_ms = [timed(with_multi_touch) for _ in range(args.multi_touch_runs)]
    rep = attribution.campaign_conversions(store, queries, ws, "big")
    engine.dispose()
    conv, click, base = (statistics.median(rounds[k]) for k in ("conversions", "click_report",
                                                               "count"))  # fmt: skip
    return {
        "db": name,
        "load_s": round(load_s, 1),
        "attribute_s": round(attribute_s, 1),
        **{f"{k}_ms": stats(v) for k, v in rounds.items()},
        "ratio_to_click_report": round(conv / click, 2),
        "ratio_to_count": round(conv / base, 2),
        **({"multi_touch_ms": stats(multi_ms)} if multi_ms else {}),
        "report": {
            "delivered": rep.delivered,
            "unique_clicks": rep.unique_clicks,
            "conversions": rep.figures.conversions,
            "converters": rep.figures.converters,
            "revenue": [(r.currency, r.revenue) for r in rep.figures.revenue],
            "median_time_to_convert_s": rep.figures.time_to_convert.median_s,
            "links": [(x.link, x.figures.conversions) for x in rep.links],
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--clicks", type=int, default=200_000)
    p.add_argument("--conversions", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--multi-touch-runs", type=int, default=0)
    p.add_argument("--only", choices=["sqlite", "postgresql"])
    args = p.parse_args()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    results = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args))
    if args.only in (None, "postgresql"):
        name = f"clicktrail_conv_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(report_bench.PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = report_bench.PG_ADMIN.rsplit("/", 1)[0] + "/" + name
            results.append(bench(url, "PostgreSQL", args))
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    out = {
        "command": " ".join(["bench/conversion_report_bench.py", *sys.argv[1:]]),
        "date": started,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average": {
            "start": [round(x, 1) for x in load_start],
            "end": [round(x, 1) for x in os.getloadavg()],
        },
        "results": results,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
