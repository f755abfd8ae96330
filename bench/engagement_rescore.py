"""Engagement rescoring after a change of weights (issue 17): how fast the jobs process's
`rescore_stale` brings a workspace's kept scores to new settings, on SQLite and PostgreSQL.

Loads `--messages` contacts with one sent message each and `--clicks` clicks on them (the
report benchmark's generator, `report_bench.load`: a mix of verdicts and links, 2/3 of the
clicks on distinct contacts), scores every contact once (`services.engagement.recompute`,
timed: the manual path), changes the click weight, then runs `rescore_stale` pass after pass
with its defaults (5,000 contacts a pass, 1,000 a transaction), as the jobs process does every
2 s, until nothing is stale; prints the passes' times, the contacts per second, and checks
that the rows equal a fresh recompute.

    .venv/bin/python bench/engagement_rescore.py --messages 200000 --clicks 200000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.models import Workspace
from clicktrail.services import engagement
from clicktrail.storage import tables as t
from clicktrail.storage.engagement import EngagementQueries

sys.path.insert(0, str(Path(__file__).parent))
import report_bench  # the bench directory is not a package
from segments_bench import on_scratch_database

NOW = report_bench.T0 + 30 * 86_400_000_000


def _rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    ce = t.contact_engagement
    cols = [c for c in ce.c if c.name != "updated_us"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(ce.c.contact_id))]


def measure(engine: sa.Engine, messages: int, clicks: int) -> dict[str, object]:
    """Load, score, change the weights, rescore to the end; return the figures."""
    started = time.perf_counter()
    report_bench.load(engine, messages, clicks)
    load_s = time.perf_counter() - started
    store = EngagementQueries(engine)
    ws = Workspace(1, "ws_bench", "bench", "Bench")
    started = time.perf_counter()
    read = engagement.recompute(store, ws, NOW)
    recompute_s = time.perf_counter() - started
    view = engagement.set_settings(store, ws, {"click_weight": 12}, NOW)
    stale = view.stale
    passes: list[float] = []
    while True:
        started = time.perf_counter()
        done = engagement.rescore_stale(store, NOW)
        if done == 0:
            idle_ms = (time.perf_counter() - started) * 1000
            break
        passes.append(time.perf_counter() - started)
    background = _rows(engine)
    with engine.begin() as conn:
        conn.execute(t.contact_engagement.delete())
    engagement.recompute(store, ws, NOW)
    return {
        "load_s": round(load_s, 1),
        "recompute": {
            "contacts_read": read,
            "s": round(recompute_s, 2),
            "contacts_per_s": round(read / recompute_s),
        },
        "rescore": {
            "stale_rows": stale,
            "passes": len(passes),
            "s": round(sum(passes), 2),
            "rows_per_s": round(stale / sum(passes)) if passes else None,
            "pass_median_ms": round(statistics.median(passes) * 1000) if passes else None,
            "pass_max_ms": round(max(passes) * 1000) if passes else None,
            "idle_pass_ms": round(idle_ms, 1),
            "wall_at_2s_interval_s": round(sum(passes) + 2 * len(passes), 1),
        },
        "equal_to_recompute": background == _rows(engine),
    }


def main() -> None:
    """Run on each engine and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--clicks", type=int, default=200_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    args = ap.parse_args()
    report: dict[str, object] = {"load_average_before": os.getloadavg(), **vars(args)}
    for name in args.engines.split(","):
        report[name] = on_scratch_database(
            name, lambda engine: measure(engine, args.messages, args.clicks)
        )
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
