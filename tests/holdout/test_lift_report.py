"""The lift report on SQLite and PostgreSQL: a campaign with a holdout sent through the real
send path, receipts and conversions through their services, and the lift computed from
storage equal to the hand-computed example of docs/attribution.md ("Holdout and lift")."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrail.domain.errors import Conflict
from clicktrail.domain.holdout import DAY_US, DEFAULT_WINDOW_US, HoldoutSpec
from clicktrail.domain.models import Campaign, CampaignOptions, Receipt, Workspace
from clicktrail.domain.report import iso_us
from clicktrail.services.conversions import record_conversions
from clicktrail.services.incrementality import lift_report
from clicktrail.services.receipts import record_receipts
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.holdouts import HoldoutQueries
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
)

LATER = NOW_US + 30 * DAY_US


def conversions(store: Repos, ws: Workspace, items: list[tuple[str, float, int]]) -> None:
    """Record conversions (external id, value in USD, time) through the conversions service."""
    repo = ConversionQueries(store.engine)
    for i in range(0, len(items), 500):
        out = record_conversions(
            repo, ws,
            [
                {"event": "purchase", "value": f"{value:.2f}", "currency": "USD",
                 "occurred_at": iso_us(at), "txn": f"t-{i + j}",
                 "contact": {"external_id": ext}}
                for j, (ext, value, at) in enumerate(items[i : i + 500])
            ],
            source="api", now_us=LATER,
        )  # fmt: skip
        assert {o.outcome for o in out} == {"accepted"}, out[:3]


def sent_with_holdout(store: Repos, tmp_path: Path) -> tuple[Workspace, Campaign, list[str]]:
    """2,502 contacts, a 20 % holdout (500), 2,002 sent; all but 2 of them delivered."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 2502)
    cp = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.2, 2026)))
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT m.public_id, c.external_id FROM messages m JOIN contacts c "
            f"ON c.id = m.contact_id WHERE m.campaign_id = {cp.id} ORDER BY m.id"
        ).all()
    assert len(rows) == 2002
    record_receipts(
        store.messages, ws, [Receipt(mid, "delivered", NOW_US + 3600_000_000) for mid, _ in rows[2:]],
        where=[str(i) for i in range(2000)], skip_unknown=False, source="test", now_us=LATER,
    )  # fmt: skip
    return ws, cp, [ext for _, ext in rows]


def test_lift_equals_the_hand_computed_example(store: Repos, tmp_path: Path) -> None:
    ws, cp, treated = sent_with_holdout(store, tmp_path)
    holdouts = HoldoutQueries(store.engine)
    drawn = holdouts.holdout_draw(cp.id)
    assert drawn is not None
    assert drawn.held == 500
    held_ids = holdouts.held_out(cp.id)
    contacts = {c.id: c.external_id for c in store.contacts.audience(ws.id, None, 0, 5000)}
    held = sorted(str(contacts[i]) for i in held_ids)
    delivered, undelivered = treated[2:], treated[:2]
    inside = drawn.drawn_us + DAY_US
    items = [(ext, 30.0, inside) for ext in delivered[:120]]  # 120 of 2,000 treated convert
    items += [(ext, 25.0, inside) for ext in held[:20]]  # 20 of 500 held out
    # Not counted: a second conversion of a converting contact adds revenue, not a convert;
    # an undelivered recipient; conversions before the send and after the 5-day window.
    items += [(delivered[0], 30.0, inside + 60_000_000)]
    items += [(undelivered[0], 30.0, inside)]
    items += [(held[30], 25.0, drawn.drawn_us - 60_000_000)]
    items += [(delivered[500], 30.0, drawn.drawn_us + DEFAULT_WINDOW_US + 1)]
    conversions(store, ws, items)

    report = lift_report(
        holdouts, cp, window_us=DEFAULT_WINDOW_US, window_source="default", now_us=LATER
    )
    assert (report.treated.contacts, report.treated.converted) == (2000, 120)
    assert (report.holdout.contacts, report.holdout.converted) == (500, 20)
    s = report.stats
    # The hand computation (docs/attribution.md): 6 % against 4 %.
    assert s.treated_rate == pytest.approx(0.06)
    assert s.holdout_rate == pytest.approx(0.04)
    assert s.absolute_lift == pytest.approx(0.02)
    assert s.relative_lift == pytest.approx(0.5)
    assert s.p_value == pytest.approx(0.0819, abs=1e-4)
    assert s.absolute_interval is not None
    assert (s.absolute_interval.low, s.absolute_interval.high) == pytest.approx(
        (-0.00306, 0.03794), abs=1e-5
    )
    assert s.relative_interval is not None
    assert (s.relative_interval.low, s.relative_interval.high) == pytest.approx(
        (-0.05603, 1.38354), abs=1e-5
    )
    # Revenue per recipient: (120 × 30 + 30) / 2,000 = 1.815 against 20 × 25 / 500 = 1.00.
    (usd,) = s.revenue
    assert usd.currency == "USD"
    assert (usd.treated_per_recipient, usd.holdout_per_recipient) == pytest.approx((1.815, 1.0))
    assert usd.interval is not None
    assert usd.interval.low < 0.815 < usd.interval.high
    assert s.too_small is None
    assert not report.window_open
    data = report.as_dict()
    assert data["holdout"]["held_out"] == 500
    assert data["window"]["seconds"] == 5 * 86400
    assert data["treated"] == {"contacts": 2000, "converted": 120}
    # Reproducible: the same report again (the bootstrap is seeded with the holdout's seed).
    again = lift_report(
        holdouts, cp, window_us=DEFAULT_WINDOW_US, window_source="default", now_us=LATER
    )
    assert again == report
    # Only one event: none of these is a signup.
    signup = lift_report(
        holdouts, cp, window_us=DEFAULT_WINDOW_US, window_source="default", now_us=LATER,
        event="signup",
    )  # fmt: skip
    assert (signup.treated.converted, signup.holdout.converted) == (0, 0)
    assert signup.stats.too_small is not None


def test_no_lift_without_a_holdout_or_before_the_send(store: Repos) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 3)
    plain = make_campaign(store, ws)
    with pytest.raises(Conflict, match="has no holdout"):
        lift_report(HoldoutQueries(store.engine), plain, window_us=DAY_US, window_source="default",
                    now_us=NOW_US)  # fmt: skip
    unsent = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.2, 1)))
    with pytest.raises(Conflict, match="has not been sent"):
        lift_report(HoldoutQueries(store.engine), unsent, window_us=DAY_US,
                    window_source="default", now_us=NOW_US)  # fmt: skip
