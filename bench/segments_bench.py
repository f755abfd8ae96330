"""Segment sizes at scale (issue 17): the size of each built-in segment and of a few saved
filters over 1,000,000 contacts, on SQLite and PostgreSQL (target: under 1 s).

Builds a scratch database per engine with the real migrations (a temporary SQLite file; a
PostgreSQL database created and dropped at the end) and bulk-loads one workspace: `--contacts`
contacts (country 80 % US, 10 % GB, 10 % CA; attribute ``plan`` gold, silver or bronze; 2 %
opted out) of which 40 % have a kept engagement row (1 to 5 human clicks over the last year,
5 % of them a conversion), computed with `domain.engagement` under the default settings. Then
it times, `--runs` times each, interleaved:

* the size of every built-in segment and of the saved filters below, through
  `services.segments.size_of` (the API's and the CLI's path: query built, one COUNT);
* the whole list with sizes (`services.segments.sizes`, what `GET /v1/segments` does);
* the anchor: a bare ``SELECT count(*) FROM contacts WHERE workspace_id = ?``.

    .venv/bin/python bench/segments_bench.py                    # 1M contacts, both engines
    .venv/bin/python bench/segments_bench.py --contacts 100000 --engines sqlite
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.engagement import (
    CLICK,
    CONVERSION,
    DAY_US,
    DEFAULTS,
    EngagementEvent,
    key_of,
)
from clicktrail.domain.models import Workspace
from clicktrail.services import segments
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.engagement import EngagementQueries
from clicktrail.storage.segments import SegmentQueries
from clicktrail.storage.sql import insert_tuples

PG_ADMIN = os.environ.get(
    "CLICKTRAIL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = 1_790_000_000_000_000  # 2026-09-21
FILTERS = {
    "engaged-us": {"band": "engaged", "country": ["US"]},
    "lapsed-gold": {"no_click_days": 30, "attributes": {"plan": "gold"}},
    "converted": {"converted": True},
    "score-10-50": {"score_min": 10, "score_below": 50},
}
BATCH = 50_000


@dataclass(frozen=True)
class Repos:
    segments: SegmentQueries
    engagement: EngagementQueries
    campaigns: CampaignQueries


def _contacts(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    plans = ("gold", "silver", "bronze")
    for i in range(1, n + 1):
        r = rng.random()
        country, phone = (("US", f"+1415{i:07d}") if r < 0.8 else
                          ("GB", f"+4420{i:08d}") if r < 0.9 else ("CA", f"+1604{i:07d}"))  # fmt: skip
        opted_out = NOW - DAY_US if rng.random() < 0.02 else None
        yield (i, 1, phone, f"crm-{i}", f"N{i}", json.dumps({"plan": plans[i % 3]}), opted_out,
               NOW, NOW, country)  # fmt: skip


def _engagement(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(1, n + 1):
        if rng.random() >= 0.4:
            continue
        events = [
            EngagementEvent(CLICK, NOW - int(rng.random() * 365 * DAY_US), str(k))
            for k in range(rng.randint(1, 5))
        ]
        if rng.random() < 0.05:
            events.append(EngagementEvent(CONVERSION, NOW - int(rng.random() * 90 * DAY_US), "c"))
        clicks = [e.at_us for e in events if e.kind == CLICK]
        conv = [e.at_us for e in events if e.kind == CONVERSION]
        yield (i, 1, key_of(events, DEFAULTS), len(clicks), len(conv), 0, max(clicks),
               max(conv) if conv else None, max(e.at_us for e in events), 0, NOW)  # fmt: skip


CONTACT_COLS = ("id", "workspace_id", "phone", "external_id", "first_name", "attributes",
                "opted_out_us", "created_us", "updated_us", "country")  # fmt: skip
ENGAGEMENT_COLS = ("contact_id", "workspace_id", "score_key", "clicks", "conversions",
                   "previews", "last_click_us", "last_conversion_us", "last_event_us",
                   "revision", "updated_us")  # fmt: skip


def _load(engine: sa.Engine, n: int) -> float:
    started = time.perf_counter()
    rng = random.Random(17)
    with engine.begin() as conn:
        conn.execute(t.workspaces.insert().values(id=1, public_id="ws_bench", slug="bench",
                                                  name="Bench", created_us=NOW))  # fmt: skip
    for table, cols, rows in ((t.contacts, CONTACT_COLS, _contacts(n, rng)),
                              (t.contact_engagement, ENGAGEMENT_COLS, _engagement(n, rng))):  # fmt: skip
        batch: list[tuple[object, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                with engine.begin() as conn:
                    insert_tuples(conn, table, cols, batch)
                batch = []
        if batch:
            with engine.begin() as conn:
                insert_tuples(conn, table, cols, batch)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return time.perf_counter() - started


def _timed(fn: Callable[[], object], runs: list[float]) -> object:
    started = time.perf_counter()
    out = fn()
    runs.append((time.perf_counter() - started) * 1000)
    return out


def measure(engine: sa.Engine, n: int, rounds: int) -> dict[str, object]:
    """Load `n` contacts into `engine` and time every size `rounds` times."""
    load_s = _load(engine, n)
    repos = Repos(SegmentQueries(engine), EngagementQueries(engine), CampaignQueries(engine))
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    for slug, f in FILTERS.items():
        segments.create_segment(repos, ws, name=slug, slug=slug, kind="filter", filter=f,
                                now_us=NOW)  # fmt: skip
    names = [*segments.BUILT_INS, *FILTERS]
    times: dict[str, list[float]] = {name: [] for name in [*names, "all (list)", "anchor"]}
    sizes: dict[str, object] = {}
    anchor = (
        sa.select(sa.func.count()).select_from(t.contacts).where(t.contacts.c.workspace_id == 1)
    )
    for _ in range(rounds):
        for name in names:
            sizes[name] = _timed(lambda name=name: segments.size_of(repos, ws, name, NOW).size,  # type: ignore[misc]
                                 times[name])  # fmt: skip

        def count() -> int:
            with engine.connect() as conn:
                return int(conn.execute(anchor).scalar_one())

        sizes["anchor"] = _timed(count, times["anchor"])
        _timed(lambda: segments.sizes(repos, ws, NOW), times["all (list)"])
    return {
        "load_s": round(load_s, 1),
        "rows": {name: sizes.get(name) for name in [*names, "anchor"]},
        "median_ms": {k: round(statistics.median(v), 1) for k, v in times.items()},
        "max_ms": {k: round(max(v), 1) for k, v in times.items()},
    }


def main() -> None:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engines", default="sqlite,postgresql")
    args = ap.parse_args()
    report: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        "load_average_before": os.getloadavg(),
        "contacts": args.contacts,
    }
    for name in args.engines.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                engine = create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
                migrate(engine)
                try:
                    report["sqlite"] = measure(engine, args.contacts, args.runs)
                finally:
                    engine.dispose()
        else:
            db = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
            engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{db}")
            try:
                migrate(engine)
                report["postgresql"] = measure(engine, args.contacts, args.runs)
            finally:
                engine.dispose()
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}"')
                admin.dispose()
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
