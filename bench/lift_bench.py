"""Holdout draw and lift report at 1,000,000 recipients (issue 16, ADR 0016).

Builds a scratch database with the real migrations (SQLite in a temporary folder by default;
``--database-url`` for PostgreSQL, whose database is then used as it is: give an empty one) and
loads one workspace in bulk: ``--recipients`` contacts on one list, spread over four regions
(the ``region`` attribute), their numbers recorded valid under the phone rules in force (as an
import records them, migration 0018), 1 % opted out. A campaign holds out ``--share`` of them,
stratified by region. Then it times:

- **draw**: `services.holdouts.assign_holdout` as the send calls it before its first message:
  the audience with its strata read, the seeded draw, the draw and its held-out contacts stored
  in one transaction;
- **draw, every number checked** (the anchor, and what the draw did before it trusted
  `contacts.phone_valid_under`): the same draw of a second campaign with the phone rules
  treated as changed, so every number goes through phonenumbers again;
- **lift report**: `services.incrementality.lift_report` after the send: every other contact
  delivered, conversions in the window (4 % of the treated, 3 % of the held out, values of
  10-100 USD), the arms read and the statistics computed (Newcomb and Katz intervals, the score
  test, revenue per recipient: the normal interval at this size, the power of the arms); the
  first call of a process (statsmodels and scipy imported) apart, then the median of ``--runs``.

    .venv/bin/python bench/lift_bench.py                      # 1,000,000 recipients, SQLite
    .venv/bin/python bench/lift_bench.py --recipients 100000  # quicker
    .venv/bin/python bench/lift_bench.py --draw-only          # the draw alone
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.holdout import DEFAULT_WINDOW_US, HoldoutSpec
from clicktrail.domain.models import Campaign, CampaignOptions
from clicktrail.services import campaigns, incrementality, workspaces
from clicktrail.services.contacts import PHONE_RULES
from clicktrail.services.holdouts import assign_holdout
from clicktrail.services.sending.recipients import is_valid_phone
from clicktrail.storage import tables as t

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
S, D = 1_000_000, 86_400_000_000
REGIONS = ("north", "south", "east", "west")
CHUNK = 50_000


def _rows(n: int, ws_id: int) -> Iterator[dict[str, Any]]:
    # Numbers +1 415 2xx-xxxx…3xx-xxxx (all valid); regions 30/30/30/10 %; 1 % opted out.
    for i in range(n):
        yield {"id": i + 1, "workspace_id": ws_id,
               "phone": f"+1415{200 + i // 10000:03d}{i % 10000:04d}", "external_id": f"c-{i}",
               "first_name": None, "attributes": {"region": REGIONS[min(3, i * 37 % 10 // 3)]},
               "opted_out_us": T0 if i % 100 == 99 else None, "created_us": T0,
               "updated_us": T0, "phone_valid_under": PHONE_RULES}  # fmt: skip


def _insert(conn: sa.Connection, table: sa.Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)


def build(container: Container, n: int, share: float) -> tuple[Campaign, Campaign]:
    """Load the workspace and its contacts; return two campaigns with the same holdout."""
    ws = workspaces.create_workspace(container.workspaces, "Bench", T0)
    workspaces.add_domain(container.workspaces, ws, "sms.example.com", T0)
    engine = container.engine
    with engine.begin() as conn:
        _insert(conn, t.contacts, _rows(n, ws.id))
        list_id = conn.execute(
            t.contact_lists.insert()
            .values(workspace_id=ws.id, name="all", created_us=T0)
            .returning(t.contact_lists.c.id)
        ).scalar_one()
        _insert(conn, t.list_members,
                ({"list_id": list_id, "contact_id": i + 1} for i in range(n)))  # fmt: skip
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT setval('contacts_id_seq', :n)"), {"n": n})
            conn.execute(sa.text("ANALYZE"))
    spec = HoldoutSpec(share, 2026, "attribute:region")
    made = [
        campaigns.create_campaign(
            container,
            ws,
            name=name,
            template="Sale https://shop.example.com/",
            list_name="all",
            now_us=T0,
            options=CampaignOptions(holdout=spec),
        )
        for name in ("Sale", "Sale again")
    ]
    return made[0], made[1]


def deliver_and_convert(container: Container, cp: Campaign, drawn_us: int, n: int) -> int:
    """Deliver the campaign to every contact not held out and store the arms' conversions in
    the lift window; return how many conversions."""
    held = container.holdouts.held_out(cp.id)
    rng = random.Random(7)

    def messages() -> Iterator[dict[str, Any]]:
        for cid in range(1, n + 1):
            if cid in held or cid % 100 == 0:  # held out, or opted out (i % 100 == 99)
                continue
            yield {"public_id": f"msg_{cid:012d}", "campaign_id": cp.id, "contact_id": cid,
                   "to_phone": "+14150000000", "body": "x", "encoding": "GSM-7",
                   "segments": 1, "status": "delivered", "queued_us": drawn_us,
                   "sent_us": drawn_us + S, "delivered_us": drawn_us + 5 * S,
                   "status_us": drawn_us + 5 * S}  # fmt: skip

    count = 0

    def conversions() -> Iterator[dict[str, Any]]:
        nonlocal count
        for cid in range(1, n + 1):
            if cid % 100 == 0:
                continue
            if rng.random() < (0.03 if cid in held else 0.04):
                count += 1
                yield {"public_id": f"cnv_{cid:012d}", "workspace_id": cp.workspace_id,
                       "event": "purchase", "value_micros": rng.randint(10, 100) * S,
                       "currency": "USD", "occurred_us": drawn_us + rng.randint(1, 4) * D,
                       "received_us": drawn_us, "contact_id": cid, "source": "api",
                       "dedup_key": f"t:purchase:{cid}"}  # fmt: skip

    with container.engine.begin() as conn:
        _insert(conn, t.messages, messages())
        _insert(conn, t.conversions, conversions())
    if container.engine.dialect.name == "postgresql":
        with container.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipients", type=int, default=1_000_000)
    p.add_argument("--share", type=float, default=0.1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    p.add_argument("--draw-only", action="store_true", help="time the draw alone, then stop")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lift-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    container = Container(
        load_settings(env={"CLICKTRAIL_DATABASE_URL": url, "CLICKTRAIL_DATA_DIR": str(tmp)})
    )
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {container.engine.dialect.name}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    cp, anchor_cp = build(container, args.recipients, args.share)
    print(f"loaded {args.recipients:,} contacts in {time.perf_counter() - t0:.1f} s", flush=True)

    drawn_us = T0 + D
    t0 = time.perf_counter()
    record = assign_holdout(container.holdouts, cp, is_valid_phone=is_valid_phone,
                            phone_rules=PHONE_RULES, now_us=drawn_us)  # fmt: skip
    draw_s = time.perf_counter() - t0
    assert record is not None
    print(
        f"draw: {draw_s:.2f} s ({record.eligible:,} eligible, {record.held:,} held out, "
        f"strata {[(s.name, s.eligible, s.held) for s in record.strata]})",
        flush=True,
    )

    if args.draw_only:
        _cleanup(container, tmp, args.database_url)
        return
    t0 = time.perf_counter()
    again = assign_holdout(container.holdouts, anchor_cp, is_valid_phone=is_valid_phone,
                           phone_rules="(rules changed)", now_us=drawn_us)  # fmt: skip
    anchor_s = time.perf_counter() - t0
    assert again is not None
    assert (again.eligible, again.held) == (record.eligible, record.held)
    assert container.holdouts.held_out(anchor_cp.id) == container.holdouts.held_out(cp.id)
    print(f"draw, every number checked (anchor): {anchor_s:.2f} s", flush=True)

    t0 = time.perf_counter()
    conversions = deliver_and_convert(container, cp, drawn_us, args.recipients)
    print(f"delivered and {conversions:,} conversions loaded in {time.perf_counter() - t0:.1f} s",
          flush=True)  # fmt: skip

    def report() -> incrementality.LiftReport:
        return incrementality.lift_report(
            container.holdouts, cp, window_us=DEFAULT_WINDOW_US, window_source="default",
            now_us=drawn_us + 10 * D,
        )  # fmt: skip

    t0 = time.perf_counter()
    first = report()
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        report()
        times.append(time.perf_counter() - t0)
    s = first.stats
    print(f"lift report: first {first_s * 1000:.0f} ms (imports statsmodels and scipy), then "
          f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
          f"of {args.runs}", flush=True)  # fmt: skip
    print(f"  treated {first.treated.contacts:,} ({first.treated.converted:,} converted), "
          f"holdout {first.holdout.contacts:,} ({first.holdout.converted:,}); absolute lift "
          f"{s.absolute_lift:.5f} {s.absolute_interval}, p {s.p_value:.3g}, revenue "
          f"{[(r.currency, round(r.lift, 4), r.method) for r in s.revenue]}, "
          f"too small: {s.too_small}")  # fmt: skip
    _cleanup(container, tmp, args.database_url)


def _cleanup(container: Container, tmp: Path, database_url: str | None) -> None:
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    container.dispose()
    if database_url is None:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
