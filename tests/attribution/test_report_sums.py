"""The conversions report's sums in SQL (issue 16) on SQLite and PostgreSQL: for random credits
of every kind (clicks on every link, views, credit 0, unsettled, values in two currencies or
none), `AttributionQueries.campaign_credits` equals the sums of the rows read one by one, and
the report equals `figures` over those rows, link by link; `ReportQueries.campaign_reach`
equals what the click report states (test sends left out)."""

from __future__ import annotations

import random
from dataclasses import asdict, is_dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from scenario import TB, Scenario, build

from clicktrail.domain import attribution as attr
from clicktrail.domain.attribution import CreditedRow, CreditSums
from clicktrail.domain.models import Campaign
from clicktrail.domain.report import Reach
from clicktrail.services import attribution
from clicktrail.services.attribution import Attributor, CreditRow
from clicktrail.storage import tables as t
from factories import Repos

NOW = TB + 30 * 86_400_000_000
MODELS = ("last_click", "first_click", "last_touch")


@pytest.fixture
def sc(store: Repos, tmp_path: Path) -> Scenario:
    s = build(store, tmp_path)
    Attributor(s.queries).run_pending(NOW)
    return s


def stored_rows(sc: Scenario, campaign: Campaign, model: str) -> list[tuple[CreditedRow, bool]]:
    """The campaign's credits under `model`, one by one (what the report read before)."""
    cc, cv = t.conversion_credits, t.conversions
    with sc.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(cc.c.link_id, cc.c.contact_id, cc.c.kind, cc.c.credit, cv.c.value_micros,
                      cv.c.currency, cc.c.delay_us, cc.c.settled)
            .join(cv, cv.c.id == cc.c.conversion_id)
            .where(cc.c.campaign_id == campaign.id, cc.c.model == model)
        ).all()  # fmt: skip
    return [
        (CreditedRow(link, contact, kind, credit, None if v is None else v / 1e6, cur, delay or 0),
         bool(settled))
        for link, contact, kind, credit, v, cur, delay, settled in rows
    ]  # fmt: skip


def flat(x: object, at: str = "") -> dict[str, object]:
    """A dataclass, dict or list as {path: leaf}, for comparisons with `pytest.approx`."""
    if is_dataclass(x) and not isinstance(x, type):
        x = asdict(x)
    if isinstance(x, dict):
        return {k: v for key, item in x.items() for k, v in flat(item, f"{at}.{key}").items()}
    if isinstance(x, list | tuple):
        return {k: v for i, item in enumerate(x) for k, v in flat(item, f"{at}[{i}]").items()}
    return {at: x}


def same(got: object, want: object) -> bool:
    """Equal, but for revenue to 1e-12: storage sums the values in micros and divides once,
    `of_rows` adds them up in dollars one by one (the last bit may differ)."""
    a, b = flat(got), flat(want)
    return a.keys() == b.keys() and all(
        a[k] == (pytest.approx(v, rel=1e-12, abs=0) if isinstance(v, float) else v)
        for k, v in b.items()
    )


def add_random_credits(sc: Scenario, n: int, seed: int) -> None:
    """Store `n` more conversions of the scenario's contacts with random credits."""
    rng = random.Random(seed)
    links = [lk.id for lk in sc.a.links]
    ids = []
    with sc.store.engine.begin() as conn:
        for i in range(n):
            value, currency = rng.choice([(None, None), (19_990_000, "USD"), (120_500_000, "USD"),
                                          (30_000_001, "EUR"), (7, "EUR")])  # fmt: skip
            ids.append(int(conn.execute(t.conversions.insert().values(
                public_id=f"cv_r{seed}_{i}", workspace_id=sc.ws.id, event="purchase",
                value_micros=value, currency=currency, occurred_us=NOW, received_us=NOW,
                contact_id=rng.choice(sc.contacts), source="api", dedup_key=f"r{seed}-{i}",
            )).inserted_primary_key[0]))  # type: ignore[index]  # fmt: skip
    rows = []
    for cid in ids:
        contact = rng.choice(sc.contacts[:3])  # few contacts: converters repeat
        for model in MODELS:
            kind = rng.choice(["click", "click", "view"])
            link = rng.choice(links) if kind == "click" else None
            campaign = rng.choice([sc.a.id, sc.a.id, sc.b.id])
            rows.append(CreditRow(
                cid, model, sc.ws.id, contact, kind, campaign, None, link, None,
                rng.choice([1.0, 1.0, 1.0, 0.0]), rng.randrange(0, 5 * 86_400_000_000, 997),
                NOW, 0, rng.random() < 0.8,
            ))  # fmt: skip
    revision, _ = sc.queries.attribution_revisions(sc.ws.id)
    assert sc.queries.put_credits(sc.ws.id, revision, ids, rows)


@pytest.mark.parametrize("seed", [1, 2])
def test_sums_in_sql_equal_the_rows_one_by_one(sc: Scenario, seed: int) -> None:
    add_random_credits(sc, 45, seed)
    reach = sc.store.reports.campaign_reach(sc.a)
    for model in MODELS:
        rows = stored_rows(sc, sc.a, model)
        credited = [r for r, _ in rows]
        got = sc.queries.campaign_credits(sc.a.id, model)
        assert same(got.total, CreditSums.of_rows(credited))
        assert got.unsettled == sum(1 for _, settled in rows if not settled) > 0
        for lk in sc.a.links:
            of_link = [r for r in credited if r.link_id == lk.id]
            assert same(got.links.get(lk.id, attr.NO_CREDITS), CreditSums.of_rows(of_link))
        report = attribution.conversion_report(sc.queries, reach, sc.ws, sc.a, model)
        assert same(report.figures, attr.figures(credited, reach.delivered, reach.unique_clicks))
        for lk, x in zip(sc.a.links, report.links, strict=True):
            of_link = [r for r in credited if r.link_id == lk.id]
            assert (x.link, x.url, x.role) == (lk.index + 1, lk.url, lk.role)
            assert same(x.figures, attr.figures(of_link, reach.delivered, reach.links[lk.id]))
        assert report.figures.time_to_convert.count == sum(1 for r in credited if r.kind == "click")
        assert {r.currency for r in report.figures.revenue} == {"EUR", "USD"}


def test_a_campaign_without_credits(sc: Scenario) -> None:
    with sc.store.engine.begin() as conn:
        conn.execute(sa.delete(t.conversion_credits))
    got = sc.queries.campaign_credits(sc.a.id, "last_click")
    assert got.total == attr.NO_CREDITS and got.links == {} and got.unsettled == 0
    assert got.total.time_to_convert.median_s is None


def test_reach_is_what_the_click_report_states(sc: Scenario) -> None:
    # A test send (delivered, clicked) counts in neither.
    with sc.store.engine.begin() as conn:
        mid = conn.execute(t.messages.insert().values(
            public_id="msg_test_send", campaign_id=sc.a.id, contact_id=sc.contacts[0],
            to_phone="+14155550000", body="x", encoding="gsm7", segments=1,
            status="delivered", queued_us=NOW, delivered_us=NOW, status_us=NOW, is_test=True,
            client_ref="test-send",
        )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
    assert mid
    for campaign in (sc.a, sc.b):
        reach = sc.store.reports.campaign_reach(campaign)
        summary = sc.store.reports.campaign_report(campaign)
        assert reach == Reach.of_report(summary, [lk.id for lk in campaign.links])
    a = sc.store.reports.campaign_reach(sc.a)
    # spring: 5 delivered (and the test send); c0 and c4 (provisional: counted) tapped a1, c1
    # a2, c3 the opt-out link (its a1 fetch was a scanner's).
    assert (a.delivered, a.unique_clicks) == (5, 3)
    assert list(a.links.values()) == [2, 1, 1]
