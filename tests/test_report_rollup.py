"""The per-recipient click rollup behind the full report (storage/rollup.py, migration 0006)
stays exact: after click replays, re-classification, late receipts and the migration backfill
it equals a rebuild from scratch, and the report equals figures worked out from raw clicks."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from clicktrail.domain.models import Receipt
from clicktrail.domain.report import FullReport, bucket_key, median
from clicktrail.services.ports import ClickRecord
from clicktrail.storage import tables as t
from clicktrail.storage.database import alembic_config
from clicktrail.storage.rollup import rebuild_click_rollup
from factories import Repos, message_ids
from test_reports_full import HUMAN, PROBE, SCANNER, SUSPECT, T0, Built, build, full

S = 1_000_000
ROLLUP = (t.message_clicks, t.message_link_clicks, t.message_click_buckets)


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            tb.name: sorted(tuple(r) for r in conn.execute(sa.select(tb)).all()) for tb in ROLLUP
        }


def assert_exact(store: Repos) -> None:
    """The incrementally maintained rollup equals a rebuild from the clicks."""
    before = snapshot(store.engine)
    with store.engine.begin() as conn:
        rebuild_click_rollup(conn)
    assert snapshot(store.engine) == before


def oracle(store: Repos, b: Built) -> dict[str, Any]:
    """Report figures worked out in Python from every stored click and message."""
    ck, m = t.clicks, t.messages
    with store.engine.connect() as conn:
        delivered = dict(
            conn.execute(
                sa.select(m.c.id, m.c.delivered_us).where(m.c.campaign_id == b.campaign.id)
            ).all()
        )
        clicks = conn.execute(
            sa.select(ck.c.message_id, ck.c.link_id, ck.c.verdict, ck.c.is_click, ck.c.at_us)
            .where(ck.c.campaign_id == b.campaign.id)
        ).all()  # fmt: skip
    role = {lk.id: lk.role for lk in b.campaign.links}
    counted = [c for c in clicks if c.is_click and c.verdict in (None, "human", "suspect")]
    eng = [c for c in counted if role[c.link_id] != "optout"]
    first: dict[int, int] = {}
    for c in eng:
        first[c.message_id] = min(first.get(c.message_id, c.at_us), c.at_us)

    def key(mid: int, at: int) -> int:
        d = delivered[mid]
        return -2 if d is None else -1 if at < d else bucket_key(at - d)

    delays = [at - delivered[mid] for mid, at in first.items() if key(mid, at) >= 0]
    per_link = {
        lk.id: (
            len({c.message_id for c in counted if c.link_id == lk.id}),
            len({c.message_id for c in clicks if c.is_click and c.link_id == lk.id}),
        )
        for lk in b.campaign.links
    }
    return {
        "unique": len({c.message_id for c in counted}),
        "raw_unique": len({c.message_id for c in clicks if c.is_click}),
        "eng_unique": len(first),
        "eng_total": len(eng),
        "optout_unique": len({c.message_id for c in counted if role[c.link_id] == "optout"}),
        "per_link": per_link,
        "buckets": dict(Counter(key(c.message_id, c.at_us) for c in eng)),
        "first_buckets": dict(Counter(bucket_key(d) for d in delays)),
        "median": None if not delays else round(median([d / S for d in delays]) or 0, 3),
        "recipients": sorted((mid, sum(1 for c in eng if c.message_id == mid)) for mid in first),
    }


def figures(b: Built, r: FullReport) -> dict[str, Any]:
    tm = r.timing
    buckets: Counter[int] = Counter()
    firsts: Counter[int] = Counter()
    for i, bk in enumerate(tm.buckets):  # back to bucket keys (hours below a week)
        k = i if i < 60 else 59 + bk.start_s // 3600
        buckets[k] += bk.clicks
        firsts[k] += bk.first_clicks
    buckets[-1], buckets[-2] = tm.before_delivery, tm.without_receipt + tm.failed_receipt
    page = b.queries.recipients(b.campaign, search=None, after=None, limit=500)
    ids = {lk.id: lk for lk in b.campaign.links}
    by_url = {lk.url: lk for lk in r.summary.links}
    return {
        "unique": r.summary.all_links.unique_clicks,
        "raw_unique": r.summary.all_links.raw_unique_clicks,
        "eng_unique": r.summary.unique_clicks,
        "eng_total": r.summary.total_clicks,
        "optout_unique": r.summary.optout.unique_clicks,
        "per_link": {
            i: (by_url[lk.url].unique_clicks, by_url[lk.url].raw_unique_clicks)
            for i, lk in ids.items()
        },
        "buckets": {k: n for k, n in buckets.items() if n},
        "first_buckets": {k: n for k, n in firsts.items() if n},
        "median": tm.median_first_click_s,
        "recipients_total": page.total,
        "recipients": [x.clicks for x in page.items],
    }


def check(store: Repos, b: Built) -> None:
    assert_exact(store)
    want, got = oracle(store, b), figures(b, full(b))
    assert got["recipients_total"] == len(want["recipients"])
    assert got["recipients"] == [n for _, n in want["recipients"]]
    del got["recipients_total"], got["recipients"], want["recipients"]
    assert got == want


@pytest.fixture
def built(store: Repos, tmp_path: Path) -> Built:
    return build(store, tmp_path)


def records(b: Built) -> list[ClickRecord]:
    with b.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.clicks.c.click_id, t.clicks.c.token, t.clicks.c.campaign_id,
                t.clicks.c.link_id, t.clicks.c.message_id, t.clicks.c.contact_id,
                t.clicks.c.at_us, t.clicks.c.method, t.clicks.c.ip, t.clicks.c.user_agent,
            ).order_by(t.clicks.c.id)
        ).all()  # fmt: skip
    return [ClickRecord(*r, {}) for r in rows]


def test_built_campaign_is_exact(built: Built) -> None:
    check(built.store, built)


def test_click_replays_change_nothing(built: Built) -> None:
    before = snapshot(built.store.engine)
    report = full(built)
    again = records(built)
    built.store.clicks.insert_clicks(
        again, [SCANNER] * len(again)
    )  # replayed: ignored, verdicts too
    built.store.clicks.insert_clicks(again[:3])
    assert snapshot(built.store.engine) == before
    assert full(built) == report
    check(built.store, built)


def test_reclassification_moves_every_figure(built: Built) -> None:
    e0 = full(built).summary
    ids = [r.click_id for r in records(built)]
    # k0/k1: m0's two cta clicks become scanner hits; k8 (m2's scanner hit) becomes human.
    built.store.clicks.save_verdicts([("k0", SCANNER, True), ("k1", SCANNER, True)])
    built.store.clicks.save_verdicts([("k8", HUMAN, True)])
    e1 = full(built).summary
    assert (e1.total_clicks, e1.unique_clicks) == (e0.total_clicks - 2 + 1, e0.unique_clicks)
    check(built.store, built)
    # Everything back to bots, then to people again.
    built.store.clicks.save_verdicts([(cid, PROBE, True) for cid in ids])
    assert full(built).summary.unique_clicks == 0
    check(built.store, built)
    built.store.clicks.save_verdicts([(cid, SUSPECT, True) for cid in ids])
    check(built.store, built)


def test_late_receipt_moves_clicks_into_the_timing(built: Built) -> None:
    tm = full(built).timing
    assert (tm.first_clicks, tm.without_receipt) == (2, 1)
    late = message_ids(built.store, built.campaign)[4]
    built.store.messages.apply_receipts(
        built.ws.id, [Receipt(late, "delivered", T0 + 40 * S)], skip_unknown=False,
        source="t", now_us=T0,
    )  # fmt: skip
    tm = full(built).timing
    # m4's click came 100 s after T0, i.e. 60 s after its late receipt: minute 1.
    assert (tm.first_clicks, tm.without_receipt) == (3, 0)
    assert tm.buckets[1].first_clicks == 1
    check(built.store, built)
    # A receipt that does not advance the message changes nothing.
    built.store.messages.apply_receipts(
        built.ws.id, [Receipt(late, "delivered", T0 + 90 * S)], skip_unknown=False,
        source="t", now_us=T0,
    )  # fmt: skip
    check(built.store, built)


def test_random_batches_replays_and_reclassification(built: Built) -> None:
    rng = random.Random(6)
    b = built
    base = records(b)
    msgs = sorted({(r.message_id, r.contact_id) for r in base})
    links = [lk.id for lk in b.campaign.links]
    verdicts = [HUMAN, SUSPECT, SCANNER, PROBE, None]
    made: list[ClickRecord] = []
    for n in range(120):
        mid, contact = rng.choice(msgs)
        made.append(
            ClickRecord(
                f"r{n}", f"rt{n}", b.campaign.id, rng.choice(links), mid, contact,
                T0 + rng.randrange(-60, 40 * 3600) * S, rng.choice(["GET", "GET", "HEAD"]),
                "203.0.113.1", None, {},
            )
        )  # fmt: skip
    pos = 0
    while pos < len(made):
        size = rng.randrange(1, 25)
        batch = made[max(0, pos - rng.randrange(0, 5)) : pos + size]  # overlapping replays
        vs = [rng.choice(verdicts) for _ in batch]
        if all(v is not None for v in vs):
            b.store.clicks.insert_clicks(batch, [v for v in vs if v is not None])
        else:
            b.store.clicks.insert_clicks(batch)
        pos += size
        ids = [r.click_id for r in rng.sample(made[:pos], k=min(pos, 8))]
        b.store.clicks.save_verdicts(
            [(cid, v, False) for cid in ids if (v := rng.choice(verdicts)) is not None]
        )
    check(b.store, b)


def test_migration_backfills_the_rollup(built: Built) -> None:
    report, before = full(built), snapshot(built.store.engine)
    assert before["message_clicks"]
    cfg = alembic_config(built.store.engine)
    command.downgrade(cfg, "0005")
    command.upgrade(cfg, "head")
    assert snapshot(built.store.engine) == before
    assert full(built) == report
