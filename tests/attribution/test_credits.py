"""Credits kept current on SQLite and PostgreSQL: the scenario of scenario.py under every model,
after a window change, after a verdict change, and the revision guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from scenario import TB, Scenario, build

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import attribution
from clicktrail.services.attribution import Attributor, CreditRow
from clicktrail.storage import tables as t
from clicktrail.storage.sql import is_postgres
from factories import Repos

NOW = TB + 30 * 86_400_000_000

INITIAL = {
    ("X0", "last_click"): ("click", "B", 0),
    ("X0", "first_click"): ("click", "A", 0),
    ("X0", "last_touch"): ("click", "B", 0),
    ("X1", "last_click"): ("click", "A", 1),
    ("X1", "first_click"): ("click", "A", 1),
    ("X1", "last_touch"): ("click", "A", 1),  # a click beats B's later view
    ("X2", "last_touch"): ("view", "B", None),
    ("X3", "last_touch"): ("view", "B", None),  # scanner and preview fetches are no clicks
    ("X4", "last_click"): ("click", "A", 0),
    ("X4", "first_click"): ("click", "A", 0),
    ("X4", "last_touch"): ("click", "A", 0),
    ("X5", "last_click"): ("click", "B", 0),  # by click id only: its contact is c0
    ("X5", "first_click"): ("click", "A", 0),
    ("X5", "last_touch"): ("click", "B", 0),
    ("X6", "none"): ("none", None, None),  # 6 days after c1's click: outside 5 days
}


@pytest.fixture
def sc(store: Repos, tmp_path: Path) -> Scenario:
    return build(store, tmp_path)


def run(sc: Scenario) -> attribution.AttributionRun:
    return Attributor(sc.queries, batch=3).run_pending(NOW)


def test_every_model_credits_exactly_the_expected_touch(sc: Scenario) -> None:
    done = run(sc)
    assert sc.credits() == INITIAL
    assert done.refused == 0
    with sc.store.engine.connect() as conn:
        credits = conn.execute(
            sa.select(t.conversion_credits.c.credit, t.conversion_credits.c.kind)
        ).all()
        unsettled = conn.execute(
            sa.select(t.conversion_credits.c.conversion_id).where(~t.conversion_credits.c.settled)
        ).scalars()
        assert set(unsettled) == {sc.conversions["X4"]}  # c4's click is provisional
    assert {c for c, kind in credits if kind != "none"} == {1.0}
    # A second pass finds nothing new (X4 is attributed again: still unsettled).
    assert run(sc).attributed == 1
    assert sc.credits() == INITIAL


def test_a_verdict_change_at_finalization_moves_the_credit(sc: Scenario) -> None:
    run(sc)
    sc.store.clicks.save_verdicts(
        [("click-6", Verdict("scanner", 95, ("NET_HOSTING",), "t1"), True)]
    )
    run(sc)
    expected = {k: v for k, v in INITIAL.items() if k[0] != "X4"}
    expected[("X4", "none")] = ("none", None, None)  # A's delivery is 24 h old: no view
    assert sc.credits() == expected


def test_a_reclassification_asks_for_reattribution(sc: Scenario) -> None:
    run(sc)
    # Rewrite a final verdict (as `bots reclassify` does): c0's click on B becomes a scanner.
    sc.store.clicks.save_verdicts(
        [("click-0-B", Verdict("scanner", 95, ("NET_HOSTING",), "t1"), True)]
    )
    run(sc)
    assert sc.credits() == INITIAL  # settled credits stay until re-attribution is asked
    attribution.request_reattribution(sc.queries, [sc.ws.id], NOW)
    assert sc.queries.attribution_revisions(sc.ws.id) == (1, 0)
    done = run(sc)
    assert done.reattributed == [sc.ws.id]
    assert sc.queries.attribution_revisions(sc.ws.id) == (1, 1)
    got = sc.credits()
    for name in ("X0", "X5"):  # B's click is gone: A's click is last and first
        assert got[(name, "last_click")] == ("click", "A", 0)
        assert got[(name, "last_touch")] == ("click", "A", 0)


def test_window_changes_reattribute_the_history(sc: Scenario) -> None:
    run(sc)
    s = attribution.set_settings(sc.queries, sc.ws, None, click_window="7d", now_us=NOW)
    assert (s.click_window_us, s.source[1]) == (7 * 86_400_000_000, "workspace")
    s = attribution.set_settings(
        sc.queries, sc.ws, sc.b, click_window="1h", delivery_window="1h", now_us=NOW
    )
    assert s.source == ("default", "campaign", "campaign")
    assert sc.queries.attribution_revisions(sc.ws.id) == (2, 0)
    run(sc)
    got = sc.credits()
    # c1's click is 6 days old: inside 7 days now.
    assert got[("X6", "last_click")] == ("click", "A", 1)
    assert ("X6", "none") not in got
    # B keeps clicks 1 hour: c0's click on B (2 h and 5 h before) no longer counts.
    for name in ("X0", "X5"):
        assert got[(name, "last_click")] == ("click", "A", 0)
        assert got[(name, "last_touch")] == ("click", "A", 0)
    # B keeps deliveries 1 hour: no view-through for X2 (5 h) and X3 (4 h).
    assert got[("X2", "none")] == ("none", None, None)
    assert got[("X3", "none")] == ("none", None, None)
    # A change of model alone needs no re-attribution: every model is kept.
    attribution.set_settings(sc.queries, sc.ws, None, model="first_click", now_us=NOW)
    assert sc.queries.attribution_revisions(sc.ws.id) == (2, 2)


def test_bad_settings_name_the_field_and_write_nothing(sc: Scenario) -> None:
    for kwargs, field in (
        ({"model": "linear"}, "model"),
        ({"click_window": "5 weeks"}, "click_window"),
        ({"delivery_window": "0h"}, "delivery_window"),
    ):
        with pytest.raises(InvalidInput) as e:
            attribution.set_settings(sc.queries, sc.ws, sc.a, now_us=NOW, **kwargs)  # type: ignore[arg-type]
        assert e.value.field == field
    assert sc.queries.attribution_overrides(sc.ws.id) == (None, {})


def test_the_revision_guard_refuses_credit_computed_under_old_settings(sc: Scenario) -> None:
    run(sc)
    revision, _ = sc.queries.attribution_revisions(sc.ws.id)
    x6 = sc.conversions["X6"]
    stale = CreditRow(x6, "last_click", sc.ws.id, sc.contacts[1], "click", sc.a.id, None, None,
                      None, 1.0, 0, 0, revision, True)  # fmt: skip
    attribution.set_settings(sc.queries, sc.ws, None, click_window="7d", now_us=NOW)
    assert not sc.queries.put_credits(sc.ws.id, revision, [x6], [stale], now_us=NOW)
    assert sc.credits()[("X6", "none")] == ("none", None, None)  # nothing written


class _BumpsMidway:
    """The real store, but the settings change after the first batch of a re-attribution
    (another process saving new windows while the jobs process works)."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.batches = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.sc.queries, name)

    def _batch(self) -> None:
        self.batches += 1
        if self.batches == 2:
            attribution.set_settings(self.sc.queries, self.sc.ws, None, click_window="7d",
                                     now_us=NOW)  # fmt: skip

    def put_credits(self, *args: object, **kwargs: object) -> bool:
        self._batch()
        return self.sc.queries.put_credits(*args, **kwargs)  # type: ignore[arg-type]

    def recredit(self, *args: object, **kwargs: object) -> object:  # PostgreSQL's batches
        self._batch()
        return self.sc.queries.recredit(*args, **kwargs)  # type: ignore[arg-type]


def test_a_concurrent_settings_change_stops_a_reattribution(sc: Scenario) -> None:
    run(sc)
    attribution.set_settings(sc.queries, sc.ws, None, click_window="1h", now_us=NOW)
    racing = _BumpsMidway(sc)
    done = Attributor(racing, batch=3).run_pending(NOW)  # type: ignore[arg-type]
    assert done.refused == 1 and done.reattributed == []
    assert sc.queries.attribution_revisions(sc.ws.id) == (2, 0)
    run(sc)  # the next pass re-attributes under 7 days
    assert sc.queries.attribution_revisions(sc.ws.id) == (2, 2)
    assert sc.credits()[("X6", "last_click")] == ("click", "A", 1)
    cc = t.conversion_credits
    with sc.store.engine.connect() as conn:
        query = sa.select(cc.c.conversion_id, cc.c.model, cc.c.revision)
        revisions = {(cid, model): rev for cid, model, rev in conn.execute(query)}
    assert revisions[(sc.conversions["X6"], "last_click")] == 2  # changed under 7 days
    # A credit carries the revision it was last written under: the Python path (SQLite)
    # writes every credit of a batch, the database's (PostgreSQL) only those that change.
    if is_postgres(sc.store.engine):
        assert 0 in revisions.values() and set(revisions.values()) <= {0, 1, 2}
    else:
        assert set(revisions.values()) == {2}


def test_the_jobs_pass_reattributes_a_few_batches_at_a_time(sc: Scenario) -> None:
    run(sc)
    attribution.set_settings(sc.queries, sc.ws, None, click_window="7d", now_us=NOW)
    job = Attributor(sc.queries, batch=2, max_batches=1)
    passes = 1
    while job.run_pending(NOW).reattributed == []:
        passes += 1
        assert sc.queries.attribution_revisions(sc.ws.id) == (1, 0)
    assert passes == 5  # 7 conversions, 2 a batch, 1 batch a pass, then the finish
    assert sc.queries.attribution_revisions(sc.ws.id) == (1, 1)
    assert sc.credits()[("X6", "last_click")] == ("click", "A", 1)


def test_conversion_credits_export(sc: Scenario) -> None:
    import io
    import json

    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from clicktrail.services import exports
    from clicktrail.storage.campaigns import CampaignQueries
    from clicktrail.storage.exports import ExportQueries

    run(sc)
    source, camps = ExportQueries(sc.store.engine), CampaignQueries(sc.store.engine)

    def export(fmt: str, **kw: str) -> bytes:
        plan = exports.plan_export(camps, source, sc.ws, "conversions", format=fmt, **kw)
        return b"".join(exports.stream(plan))

    rows = [json.loads(line) for line in export("jsonl").splitlines()]
    assert len(rows) == len(INITIAL)
    assert [(r["model"], r["kind"]) for r in rows[:3]] == [
        ("first_click", "click"), ("last_click", "click"), ("last_touch", "click"),
    ]  # fmt: skip
    x0 = rows[1]
    assert (x0["value"], x0["currency"], x0["campaign_slug"], x0["link"]) == (
        100.0, "USD", "summer", 1,
    )  # fmt: skip
    assert (x0["click_id"], x0["credit"], x0["delay_s"], x0["settled"]) == (
        "click-0-B", 1.0, 7200.0, True,
    )  # fmt: skip
    # A campaign: the credits that went to it; a time range: when conversions occurred.
    summer = [json.loads(x) for x in export("jsonl", campaign="summer").splitlines()]
    assert {(r["model"], r["kind"]) for r in summer} == {
        ("last_click", "click"), ("last_touch", "click"), ("last_touch", "view"),
    }  # fmt: skip
    assert len(summer) == 6  # X0, X5 x2 models each; X2, X3 views
    table = pq.read_table(io.BytesIO(export("parquet", phone="omit")))
    assert table.num_rows == len(INITIAL) and "phone" not in table.column_names
    assert str(table.schema.field("credit").type) == "double"
    csv_head = export("csv").split(b"\r\n")[0].decode()
    assert csv_head.startswith("conversion_id,event,occurred_at,value,currency,model,kind")
