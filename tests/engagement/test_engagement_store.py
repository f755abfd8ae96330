"""Engagement scores through storage, on SQLite and PostgreSQL: clicks through the real inbox and
click pipeline, a re-classification, a conversion, each moving the kept scores by exactly what
they are worth; the kept rows equal a full recompute; settings and their revision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from clicktrail.domain import engagement as domain_engagement
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord
from clicktrail.domain.engagement import DAY_US, DEFAULTS, EPOCH_STRIDE, score_at, scoring_epoch
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.services import engagement
from clicktrail.services.clicks import ClickPipeline
from clicktrail.services.conversions import record_conversions
from clicktrail.services.ports import StoredRequest
from clicktrail.storage import tables as t
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.database import create_engine
from clicktrail.storage.engagement import EngagementQueries
from clicktrail.storage.inbox import InboxWriter
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace, send

NOW = NOW_US
HUMAN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


class UaClassifier:
    """Verdicts by user agent: ``Bot`` scanner, ``Preview`` preview, anything else human."""

    def classify(self, request: StoredRequest) -> Verdict:
        ua = request.user_agent or ""
        if "Bot" in ua:
            return Verdict("scanner", 90, ("TEST_BOT",))
        if "Preview" in ua:
            return Verdict("preview", 80, ("TEST_PREVIEW",))
        return Verdict("human", 5, ())

    def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
        return None


@dataclass
class World:
    store: Repos
    eng: EngagementQueries
    ws: Workspace
    contacts: list[Contact]
    campaign: Campaign
    messages: dict[int, int]  # contact id -> message id
    pipeline: ClickPipeline
    n: int = 0

    def click(self, who: int, days_ago: float, *, ua: str = HUMAN_UA, link: int = 0) -> str:
        """Spool one request of contact `who` on link `link` (0: the sale, 1: opt-out) into
        the inbox, as the redirect does; return its click id."""
        self.n += 1
        c = self.contacts[who]
        lk = self.campaign.links[link]
        rec = ClickRecord(
            f"ck{self.n:04d}", f"tk{self.n}", self.campaign.id, lk.id, self.messages[c.id], c.id,
            NOW - round(days_ago * DAY_US), "GET", "203.0.113.7", ua, {},
        )  # fmt: skip
        InboxWriter(self.store.engine)([orjson.dumps(list(rec))])
        return rec.click_id

    def score(self, who: int) -> float:
        kept = self.eng.stored_engagement(self.contacts[who].id)
        return score_at(None if kept is None else kept.state.key, NOW, DEFAULTS)


@pytest.fixture
def world(store: Repos, tmp_path: Path) -> World:
    ws = make_workspace(store)
    make_domain(store, ws)
    contacts = make_contacts(store, ws, 4)
    cp = make_campaign(
        store, ws, "Sale https://shop.example.com/a stop: https://x.example.com/o",
        link_roles={1: "optout"},
    )  # fmt: skip
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    with store.engine.connect() as conn:
        msgs = dict(
            conn.execute(
                sa.select(t.messages.c.contact_id, t.messages.c.id).where(
                    t.messages.c.campaign_id == cp.id
                )
            ).all()
        )
    eng = EngagementQueries(store.engine)
    pipeline = ClickPipeline(
        store.clicks,
        UaClassifier(),
        clock=lambda: NOW,
        rescore=lambda: engagement.refresh_dirty(eng, NOW),
    )
    return World(store, eng, ws, contacts, cp, msgs, pipeline)


def kept_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    ce = t.contact_engagement
    cols = [c for c in ce.c if c.name != "updated_us"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(ce.c.contact_id))]


def test_pipeline_keeps_scores_exact_and_equal_to_a_recompute(world: World) -> None:
    w = world
    recent = w.click(0, 0)  # 10
    w.click(0, 30)  # 5
    w.click(1, 0, ua="WhatsApp Preview")  # 1
    w.click(1, 0, link=1)  # an opt-out link: 0
    w.click(2, 1, ua="SecurityBot")  # a scanner: 0
    assert w.pipeline.process_new() == 5
    assert w.eng.dirty_count() == 0
    assert [w.score(i) for i in range(4)] == pytest.approx([15.0, 1.0, 0.0, 0.0], rel=1e-12)
    assert w.eng.stored_engagement(w.contacts[2].id) is None  # no event that counts: no row
    row = w.eng.stored_engagement(w.contacts[0].id)
    assert row is not None and (row.state.clicks, row.state.previews) == (2, 0)
    assert row.state.last_click_us == NOW

    # Re-classified as a scanner (as `bots reclassify` and finalization store verdicts).
    w.store.clicks.save_verdicts([(recent, Verdict("scanner", 95, ("LATE",)), True)])
    assert w.eng.dirty_count() == 1
    w.pipeline.finalize()  # nothing to finalize at NOW's clock; contacts are scored again
    assert w.score(0) == pytest.approx(5.0, rel=1e-12)

    # A conversion 30 days ago: 30 halved.
    (out,) = record_conversions(
        ConversionQueries(w.store.engine), w.ws,
        [{"event": "purchase", "contact": {"external_id": "ext-3"},
          "occurred_at": str((NOW - 30 * DAY_US) // 1_000_000)}],
        source="api", now_us=NOW,
    )  # fmt: skip
    assert out.outcome == "accepted", out
    w.pipeline.process_new()
    assert w.score(3) == pytest.approx(15.0, rel=1e-12)

    incremental = kept_rows(w.store.engine)
    with w.store.engine.begin() as conn:
        conn.execute(t.contact_engagement.delete())
    assert engagement.recompute(w.eng, w.ws, NOW) == 4
    assert kept_rows(w.store.engine) == incremental


def test_explain_lists_each_event_and_flags_pending_changes(world: World) -> None:
    w = world
    w.click(0, 0)
    w.click(0, 60)
    w.pipeline.process_new()
    got = engagement.explain_contact(w.store.contacts, w.eng, w.ws, "ext-0", NOW)
    assert got.score == pytest.approx(12.5, rel=1e-12) and not got.pending
    assert [round(c.value, 9) for c in got.explanation.contributions] == [10.0, 2.5]
    assert got.explanation.contributions[0].event.label == w.campaign.slug
    w.click(0, 0)  # in the inbox, not moved yet: not part of either
    w.store.clicks.insert_clicks([])  # nothing
    with w.store.engine.begin() as conn:  # a click stored by hand, not scored yet
        conn.execute(t.engagement_dirty.insert(), {"contact_id": w.contacts[0].id})
    w.pipeline.process_new()
    got = engagement.explain_contact(w.store.contacts, w.eng, w.ws, "+14155550000", NOW)
    assert got.score == pytest.approx(22.5, rel=1e-12) and not got.pending
    with pytest.raises(NotFound) as e:
        engagement.explain_contact(w.store.contacts, w.eng, w.ws, "ext-99", NOW)
    assert e.value.field == "contact"


def test_settings_revision_stale_rows_and_recompute(world: World) -> None:
    w = world
    w.click(0, 30)
    w.pipeline.process_new()
    view = engagement.get_settings(w.eng, w.ws)
    assert (view.settings, view.revision, view.stale, view.stored) == (DEFAULTS, 0, 0, False)
    view = engagement.set_settings(w.eng, w.ws, {"click_weight": 20, "half_life_days": 15}, NOW)
    assert (view.revision, view.stale) == (1, 1)
    with pytest.raises(InvalidInput) as e:
        engagement.set_settings(w.eng, w.ws, {"at_risk_min": 50}, NOW)
    assert e.value.field == "at_risk_min"
    assert engagement.get_settings(w.eng, w.ws).revision == 1  # nothing stored
    engagement.recompute(w.eng, w.ws, NOW)
    assert engagement.get_settings(w.eng, w.ws).stale == 0
    got = engagement.explain_contact(w.store.contacts, w.eng, w.ws, "ext-0", NOW)
    assert got.score == pytest.approx(5.0, rel=1e-12)  # 20 after two half-lives of 15 days


class CountingScores:
    """The engagement store, counting how often each contact's events are read."""

    def __init__(self, inner: EngagementQueries) -> None:
        self.inner = inner
        self.reads: dict[int, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def contact_events(self, contact_ids: Any) -> Any:
        for cid in set(contact_ids):
            self.reads[cid] = self.reads.get(cid, 0) + 1
        return self.inner.contact_events(contact_ids)


def test_many_notes_of_few_contacts_score_each_once_per_take(world: World) -> None:
    """Clicks of the same contacts noted many times between passes: every note is done, each
    contact is scored once per take of notes (not once per note batch), and the kept rows are
    those of a full recompute."""
    w = world
    w.pipeline.rescore = None  # passes with no jobs process scoring behind them
    for i in range(30):  # 10 clicks each for 3 contacts, a pass each: 30 notes, interleaved
        w.click(i % 3, i / 10)
        assert w.pipeline.process_new() == 1
    assert w.eng.dirty_count() == 30
    counting = CountingScores(w.eng)
    assert engagement.refresh_dirty(counting, NOW, limit=2, take=16) == 30  # type: ignore[arg-type]
    assert w.eng.dirty_count() == 0
    # Two takes (16 + 14 notes), each over the 3 contacts: twice each, not 15 times.
    assert counting.reads == {w.contacts[i].id: 2 for i in range(3)}
    incremental = kept_rows(w.store.engine)
    with w.store.engine.begin() as conn:
        conn.execute(t.contact_engagement.delete())
    engagement.recompute(w.eng, w.ws, NOW)
    assert kept_rows(w.store.engine) == incremental


def _scored_four(w: World) -> None:
    """One human click each for contacts 0–3, 0, 10, 20 and 30 days ago, scored."""
    for who in range(4):
        w.click(who, who * 10)
    w.pipeline.process_new()


class CrashingScores(CountingScores):
    """The engagement store of a process that dies after `lives` rescore transactions."""

    def __init__(self, inner: EngagementQueries, lives: int) -> None:
        super().__init__(inner)
        self.lives = lives

    def put_engagement(self, scored: Any, done: Any, now_us: int) -> None:
        if self.lives == 0:
            raise RuntimeError("killed")
        self.lives -= 1
        self.inner.put_engagement(scored, done, now_us)


def test_a_change_of_weights_is_rescored_in_the_background_and_survives_a_restart(
    world: World, database_url: str
) -> None:
    """Weights changed: every kept score is stale and reported as "0 of 4"; the rescore job
    does a bounded number per pass; a process killed between two of its transactions leaves
    the rest stale, and a new process (another engine) finishes them; the rows are then those
    of a full recompute, and explanations follow the new settings throughout."""
    w = world
    _scored_four(w)
    # Bands alone read kept scores: nothing to score again.
    view = engagement.set_settings(w.eng, w.ws, {"engaged_min": 9}, NOW)
    assert (view.revision, view.stale, view.kept) == (1, 0, 4)
    assert engagement.rescore_stale(w.eng, NOW) == 0
    view = engagement.set_settings(w.eng, w.ws, {"click_weight": 20, "half_life_days": 10}, NOW)
    assert (view.revision, view.stale, view.kept, view.rescored) == (2, 4, 4, 0)
    got = engagement.explain_contact(w.store.contacts, w.eng, w.ws, "ext-1", NOW)
    # The kept key is of the old half-life until scored again: pending, and the explanation
    # (computed from the events now) already says what it will be.
    assert got.pending and got.explanation.score == pytest.approx(10.0, rel=1e-12)  # 20 · 2^-1
    # One pass: a budget of 3 contacts, 2 per transaction.
    assert engagement.rescore_stale(w.eng, NOW, budget=3, batch=2) == 3
    view = engagement.get_settings(w.eng, w.ws)
    assert (view.stale, view.rescored, view.kept) == (1, 3, 4)
    # The next pass dies before its first transaction commits: nothing moves.
    with pytest.raises(RuntimeError):
        engagement.rescore_stale(CrashingScores(w.eng, 0), NOW, batch=1)  # type: ignore[arg-type]
    assert engagement.get_settings(w.eng, w.ws).stale == 1
    # A change made mid-rescore starts it over, from what is stored, with the newest settings.
    view = engagement.set_settings(w.eng, w.ws, {"click_weight": 30}, NOW)
    assert (view.stale, view.kept) == (4, 4)
    with pytest.raises(RuntimeError):  # killed after two of four transactions
        engagement.rescore_stale(CrashingScores(w.eng, 2), NOW, batch=1)  # type: ignore[arg-type]
    assert engagement.get_settings(w.eng, w.ws).stale == 2
    restarted = EngagementQueries(create_engine(database_url))
    try:
        assert engagement.rescore_stale(restarted, NOW) == 2
        assert engagement.rescore_stale(restarted, NOW) == 0  # nothing left: one lookup
    finally:
        restarted.engine.dispose()
    view = engagement.get_settings(w.eng, w.ws)
    assert (view.stale, view.rescored, view.kept) == (0, 4, 4)
    got = engagement.explain_contact(w.store.contacts, w.eng, w.ws, "ext-1", NOW)
    assert not got.pending and got.score == pytest.approx(15.0, rel=1e-12)  # 30 · 2^-1
    background = kept_rows(w.store.engine)
    assert {r[-1] for r in background} == {scoring_epoch(2)}  # revision column: the epoch
    with w.store.engine.begin() as conn:
        conn.execute(t.contact_engagement.delete())
    engagement.recompute(w.eng, w.ws, NOW)
    assert kept_rows(w.store.engine) == background


def test_a_new_scoring_version_rescores_every_workspace(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade that changes the scoring (`SCORING_VERSION`): the kept scores of a workspace
    that never stored settings are stale too, and the job stamps them with the new epoch."""
    w = world
    _scored_four(w)
    assert engagement.get_settings(w.eng, w.ws).stale == 0
    monkeypatch.setattr(domain_engagement, "SCORING_VERSION", 2)
    view = engagement.get_settings(w.eng, w.ws)
    assert (view.stored, view.stale, view.kept) == (False, 4, 4)
    assert engagement.rescore_stale(w.eng, NOW) == 4
    assert engagement.get_settings(w.eng, w.ws).stale == 0
    assert {r[-1] for r in kept_rows(w.store.engine)} == {2 * EPOCH_STRIDE}


def test_a_rescore_pass_starts_no_batch_after_its_time(world: World) -> None:
    """The pass shares the jobs' thread with the click pipeline: past `seconds` it starts no
    new batch, and the next pass carries on."""
    w = world
    _scored_four(w)
    engagement.set_settings(w.eng, w.ws, {"preview_weight": 2}, NOW)
    ticks = iter(i * 0.6 for i in range(100))  # 0 at the start, then 0.6 s per look
    assert engagement.rescore_stale(w.eng, NOW, batch=1, clock=lambda: next(ticks)) == 1
    assert engagement.get_settings(w.eng, w.ws).stale == 3
    assert engagement.rescore_stale(w.eng, NOW) == 3
