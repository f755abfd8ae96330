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
* the anchor: a bare ``SELECT count(*) FROM contacts WHERE workspace_id = ?``, and the floors
  of the filters that must read rows anyway: the opted-in contacts (an index count), and the
  opted-in contacts with ``plan`` gold (the attribute read from every contact's JSON);
* with ``--compare`` (the default), the same sizes counted by the SQL of 0.17's first version
  (`old_count_members` below: the opted-out contacts among score rows found by a join, an
  attribute filter with a "no row" condition counted as two passes), interleaved with the new,
  on the same data: medians side by side and their ratio (old / new).

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
from clicktrail.domain.segments import SegmentQuery
from clicktrail.services import segments
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.database import create_engine, migrate
from clicktrail.storage.engagement import EngagementQueries
from clicktrail.storage.segments import SegmentQueries, _contact_parts
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
T = TypeVar("T")
_c, _ce = t.contacts, t.contact_engagement


# The counts as first written (storage/segments.py before the rewrite), kept to time side by side.
def _old_parts(q: SegmentQuery) -> tuple[list[Any], list[Any]]:
    e = _ce.c
    needs_row: list[Any] = []
    no_row_ok: list[Any] = []
    if q.key_min is not None:
        needs_row.append(e.score_key >= q.key_min)
    if q.key_below is not None:
        no_row_ok.append(sa.or_(e.score_key.is_(None), e.score_key < q.key_below))
    if q.clicked is True:
        needs_row.append(e.clicks > 0)
    elif q.clicked is False:
        no_row_ok.append(sa.or_(e.clicks.is_(None), e.clicks == 0))
    if q.converted is True:
        needs_row.append(e.conversions > 0)
    elif q.converted is False:
        no_row_ok.append(sa.or_(e.conversions.is_(None), e.conversions == 0))
    if q.no_click_since_us is not None:
        no_row_ok.append(sa.or_(e.last_click_us.is_(None), e.last_click_us < q.no_click_since_us))
    return needs_row, no_row_ok


def _old_count(conn: sa.Connection, q: SegmentQuery, extra: Sequence[Any] = ()) -> int:
    needs_row, no_row_ok = _old_parts(q)
    contact_free = (
        q.static_segment_id is None and q.clicked_campaign_id is None and not q.country
        and not q.attributes and q.opted_in
    )  # fmt: skip
    if needs_row and contact_free:
        conds = [_ce.c.workspace_id == q.workspace_id, *needs_row, *no_row_ok, *extra]
        scored = conn.execute(sa.select(sa.func.count()).select_from(_ce).where(*conds))
        opted_out = conn.execute(
            sa.select(sa.func.count())
            .select_from(_c.join(_ce, _ce.c.contact_id == _c.c.id))
            .where(_c.c.workspace_id == q.workspace_id, _c.c.opted_out_us.is_not(None), *conds)
        )
        return int(scored.scalar_one()) - int(opted_out.scalar_one())
    where = _contact_parts(q)
    frm: Any = _c
    if needs_row or no_row_ok:
        frm = _c.join(_ce, _ce.c.contact_id == _c.c.id, isouter=not needs_row)
        if needs_row:
            where.append(_ce.c.workspace_id == q.workspace_id)
    sel = sa.select(sa.func.count()).select_from(frm).where(*where, *needs_row, *no_row_ok, *extra)
    return int(conn.execute(sel).scalar_one())


def old_count_members(conn: sa.Connection, q: SegmentQuery) -> int:
    """Return the size as the first version counted it."""
    needs_row, no_row_ok = _old_parts(q)
    if needs_row or len(no_row_ok) != 1:
        return _old_count(conn, q)
    base = replace(q, key_below=None, clicked=None, converted=None, no_click_since_us=None)
    if q.no_click_since_us is not None:
        recent = _old_count(conn, replace(base, clicked=True),
                            [_ce.c.last_click_us >= q.no_click_since_us])  # fmt: skip
        return _old_count(conn, base) - recent
    opposite = replace(
        base, key_min=q.key_below, clicked=True if q.clicked is False else None,
        converted=True if q.converted is False else None,
    )  # fmt: skip
    return _old_count(conn, base) - _old_count(conn, opposite)


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


def _floors() -> dict[str, Any]:
    c = t.contacts.c
    base = sa.select(sa.func.count()).select_from(t.contacts).where(c.workspace_id == 1)
    opted_in = base.where(c.opted_out_us.is_(None))
    return {
        "anchor": base,
        "floor: opted in": opted_in,
        "floor: opted in, plan gold": opted_in.where(c.attributes["plan"].as_string() == "gold"),
    }


def measure(engine: sa.Engine, n: int, rounds: int, compare: bool) -> dict[str, object]:
    """Load `n` contacts into `engine` and time every size `rounds` times (with `compare`, each
    also counted by the first version's SQL, interleaved)."""
    load_s = _load(engine, n)
    repos = Repos(SegmentQueries(engine), EngagementQueries(engine), CampaignQueries(engine))
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    for slug, f in FILTERS.items():
        segments.create_segment(repos, ws, name=slug, slug=slug, kind="filter", filter=f,
                                now_us=NOW)  # fmt: skip
    names = [*segments.BUILT_INS, *FILTERS]
    floors = _floors()
    olds = [f"{name} (old SQL)" for name in names] if compare else []
    keys = [*names, *olds, "all (list)", *floors]
    times: dict[str, list[float]] = {k: [] for k in keys}
    sizes: dict[str, object] = {}

    def count(sel: Any) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sel).scalar_one())

    def old(name: str) -> int:
        q = segments.query_for(repos, segments.get_segment(repos, ws, name, NOW), NOW)
        with engine.connect() as conn:
            return old_count_members(conn, q)

    for _ in range(rounds):
        for name in names:
            sizes[name] = _timed(lambda name=name: segments.size_of(repos, ws, name, NOW).size,  # type: ignore[misc]
                                 times[name])  # fmt: skip
            if compare:
                sizes[f"{name} (old SQL)"] = _timed(lambda name=name: old(name),  # type: ignore[misc]
                                                    times[f"{name} (old SQL)"])  # fmt: skip
        for label, sel in floors.items():
            sizes[label] = _timed(lambda sel=sel: count(sel), times[label])  # type: ignore[misc]
        _timed(lambda: segments.sizes(repos, ws, NOW), times["all (list)"])
    medians = {k: round(statistics.median(v), 1) for k, v in times.items()}
    out: dict[str, object] = {
        "load_s": round(load_s, 1),
        "rows": {k: sizes.get(k) for k in keys if k != "all (list)"},
        "median_ms": medians,
        "max_ms": {k: round(max(v), 1) for k, v in times.items()},
    }
    if compare:
        out["same_sizes"] = all(sizes[name] == sizes[f"{name} (old SQL)"] for name in names)
        out["old_over_new"] = {
            name: round(medians[f"{name} (old SQL)"] / max(medians[name], 0.1), 2) for name in names
        }
    return out


def on_scratch_database(name: str, fn: Callable[[sa.Engine], T]) -> T:
    """Return `fn` run on a freshly migrated scratch database of engine `name` ("sqlite": a
    temporary file; "postgresql": a database created on `PG_ADMIN`'s server, dropped after)."""
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                migrate(engine)
                return fn(engine)
            finally:
                engine.dispose()
    db = f"clicktrail_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{db}")
    try:
        migrate(engine)
        return fn(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}"')
        admin.dispose()


def main() -> None:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--no-compare", dest="compare", action="store_false",
                    help="Time the current SQL only.")  # fmt: skip
    args = ap.parse_args()
    report: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        "load_average_before": os.getloadavg(),
        "contacts": args.contacts,
    }
    for name in args.engines.split(","):
        report[name] = on_scratch_database(
            name, lambda engine: measure(engine, args.contacts, args.runs, args.compare)
        )
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
