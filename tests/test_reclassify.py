"""`bots reclassify` in one pass (services/bots.py): the same verdicts, reports and rollup as
giving every selected request its new request-level verdict and then finalizing everything
settled, with one write per changed request and none for an unchanged one — across batch
edges, for a campaign or a time range, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import SignalsClassifier
from clicktrail.domain.bots.model import Verdict
from clicktrail.services import bots
from clicktrail.services.ports import RequestClassifier, StoredRequest
from clicktrail.storage.clicks import ClickQueries
from factories import Repos
from test_bots_pipeline import DELIVERED, IPHONE, S, _rec, _world, _writer
from test_report_rollup import assert_exact, snapshot

CHROME = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
NOW = DELIVERED + 10_000 * S
SETTLE = 900 * S


class _RecordingClicks(ClickQueries):
    """The stored clicks, counting the verdicts written."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self.written = 0

    def save_verdicts(self, verdicts: Any) -> None:
        self.written += len(verdicts)
        super().save_verdicts(verdicts)


def _recording(engine: sa.Engine) -> Repos:
    """The repositories, their clicks counting the verdicts written."""
    return dataclasses.replace(Repos.on(engine), clicks=_RecordingClicks(engine))


class _ScannerUa:
    """New rules: Chrome user agents are now scanners; everything else as before."""

    def __init__(self) -> None:
        self.inner = SignalsClassifier()

    def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
        return self.inner.ip_kind(ip, campaign_id)

    def classify(self, request: StoredRequest) -> Verdict:
        if request.user_agent == CHROME and request.method == "GET":
            return Verdict("scanner", 100, ("UA_SCANNER_TEST",), "t")
        return self.inner.classify(request)


def _traffic(store: Repos, engine: sa.Engine, tmp_path: Path) -> None:
    """Sixteen recipients: people over hours, a link checker hitting both links within a
    second, one address fanning out to six recipients within a minute, a HEAD probe, a
    request before delivery, Chrome taps — some settled, some not (NOW - SETTLE)."""
    people = _world(store, engine, tmp_path, n=16)
    recs = []
    for i in range(16):
        recs.append(_rec(f"p{i}", people[i][i % 2], DELIVERED + (600 + 600 * i) * S,
                         ip=f"172.{56 + i}.1.1"))  # fmt: skip
    for i in range(3):  # both links within a second
        t0 = DELIVERED + (1200 + 2000 * i) * S
        recs += [_rec(f"l{i}a", people[i][0], t0, ip=f"172.40.{i}.9"),
                 _rec(f"l{i}b", people[i][1], t0 + 400_000, ip=f"172.40.{i}.9")]  # fmt: skip
    for i in range(6):  # one address, six recipients, one minute
        recs.append(_rec(f"f{i}", people[6 + i][0], DELIVERED + 3000 * S + i * 8 * S,
                         ip="172.41.0.7"))  # fmt: skip
    recs.append(_rec("head", people[13][0], DELIVERED + 900 * S, method="HEAD"))
    recs.append(_rec("early", people[14][1], DELIVERED - 5 * S))
    for i in range(4):
        recs.append(_rec(f"c{i}", people[12 + i][1], DELIVERED + (2500 + 2100 * i) * S,
                         ua=CHROME, ip=f"172.42.{i}.1"))  # fmt: skip
    _writer(store)(recs)
    bots.finalize_settled(store.clicks, NOW, settle_us=SETTLE)


def _state(engine: sa.Engine) -> tuple[list[Any], dict[str, Any], list[Any]]:
    with engine.connect() as conn:
        clicks = conn.execute(
            sa.text(
                "SELECT click_id, verdict, score, reasons, classifier_version, final FROM clicks "
                "ORDER BY click_id"
            )
        ).all()
        sightings = conn.execute(sa.text("SELECT * FROM early_sightings ORDER BY 1, 2")).all()
    rows = [(c, v, s, _reasons(r), cv, bool(f)) for c, v, s, r, cv, f in clicks]
    return rows, snapshot(engine), [tuple(r) for r in sightings]


def _reasons(raw: Any) -> tuple[str, ...]:
    return tuple(json.loads(raw) if isinstance(raw, str) else raw or ())


def _two_passes(
    store: Repos, classifier: RequestClassifier, limit: int, **selection: Any
) -> tuple[int, int]:
    """What reclassify did before it became one pass: every selected request's request-level
    verdict stored (not final), then the finalization of everything settled. Returns
    (requests, verdict changes)."""
    after = requests = changes = 0
    while page := store.clicks.requests_page(
        after, limit, selection.get("campaign_id"), selection.get("since_us")
    ):
        after = page[-1][0]
        new = [(r, classifier.classify(r)) for _, r in page]
        requests += len(new)
        changes += sum(1 for r, v in new if r.verdict is None or r.verdict.verdict != v.verdict)
        store.clicks.save_verdicts([(r.click_id, v, False) for r, v in new])
    bots.finalize_settled(
        store.clicks, NOW, settle_us=SETTLE, limit=limit, ip_kind=classifier.ip_kind
    )
    return requests, changes


def _restore(store: Repos, engine: sa.Engine, rows: list[Any], sightings: list[Any]) -> None:
    store.clicks.save_verdicts([(c, Verdict(v, s, r, cv), f) for c, v, s, r, cv, f in rows])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM early_sightings"))
    store.clicks.record_early_sightings(sightings)


@pytest.mark.parametrize("limit", [1, 3, 7, 20_000])
@pytest.mark.parametrize("which", ["all", "campaign", "since"])
def test_one_pass_equals_two_passes_across_batch_edges(
    store: Repos,
    engine: sa.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
    which: str,
) -> None:
    _traffic(store, engine, tmp_path)
    cp = store.campaigns.list_campaigns(store.workspaces.list_workspaces()[0].id)[0].id
    selection = {
        "all": {},
        "campaign": {"campaign_id": cp},
        "since": {"since_us": DELIVERED + 2400 * S},
    }[which]
    before, _, seen = _state(engine)
    assert {v for _, v, *_ in before} >= {"human", "scanner", "probe", "automation"}
    assert any(not f for *_, f in before) and any(f for *_, f in before)  # settled and not
    classifier = _ScannerUa()
    counts = _two_passes(store, classifier, limit, **selection)
    want = _state(engine)
    _restore(store, engine, before, seen)
    assert _state(engine)[0] == before

    monkeypatch.setattr(bots, "BATCH", limit)
    result = bots.reclassify(store.clicks, classifier, NOW, settle_us=SETTLE, **selection)
    assert _state(engine) == want
    assert (result.requests, result.verdict_changes) == counts
    assert counts[1] >= (4 if which != "since" else 1)  # the Chrome taps, at least
    assert_exact(store)


def test_reclassify_moves_the_report_and_an_unchanged_run_writes_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    store = _recording(engine)
    _traffic(store, engine, tmp_path)
    campaign = store.campaigns.list_campaigns(store.workspaces.list_workspaces()[0].id)[0]
    first = store.reports.campaign_report(campaign)
    assert first.by_verdict.get("scanner", 0) >= 6  # link checker, fan-out

    store.clicks.written = 0
    result = bots.reclassify(store.clicks, _ScannerUa(), NOW, settle_us=SETTLE)
    assert result.requests == store.clicks.count_clicks()
    # Request-level verdicts against the stored ones: the four Chrome taps (human → scanner)
    # and the twelve requests that behaviour made scanners (their request-level one is human).
    assert result.verdict_changes == 16
    after = store.reports.campaign_report(campaign)
    assert after.total_clicks == first.total_clicks - 4
    assert after.raw_total_clicks == first.raw_total_clicks
    assert after.by_reason["UA_SCANNER_TEST"] == 4
    assert_exact(store)
    written = store.clicks.written
    assert 4 <= written < result.requests  # settled requests already final and unchanged: kept

    # The same rules again: nothing to write, nothing moves.
    state = _state(engine)
    store.clicks.written = 0
    again = bots.reclassify(store.clicks, _ScannerUa(), NOW, settle_us=SETTLE)
    assert (again.requests, again.verdict_changes) == (result.requests, 12)
    assert store.clicks.written == 0
    assert _state(engine) == state
    assert store.reports.campaign_report(campaign) == after


def test_reclassify_pages_larger_than_a_batch(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of requests through batches of 50: every one judged once, final when
    settled, the rollup exact."""
    store = _recording(engine)
    people = _world(store, engine, tmp_path, n=40)
    recs = [
        _rec(f"r{i:04d}", people[i % 40][i % 2], DELIVERED + (60 + 7 * i) * S,
             ip=f"172.{56 + i % 40}.{i % 7}.1", ua=CHROME if i % 5 == 0 else IPHONE)
        for i in range(900)
    ]  # fmt: skip
    store.clicks.insert_clicks(recs)
    monkeypatch.setattr(bots, "BATCH", 50)
    settle_at = DELIVERED + (60 + 7 * 800) * S  # the last 100 requests are not settled
    result = bots.reclassify(store.clicks, _ScannerUa(), settle_at, settle_us=0)
    assert (result.requests, result.verdict_changes) == (900, 900)
    assert result.finalized == 800
    with engine.connect() as conn:
        finals = dict(
            conn.execute(sa.text("SELECT final, count(*) FROM clicks GROUP BY final")).all()
        )
        unjudged = conn.execute(sa.text("SELECT count(*) FROM clicks WHERE verdict IS NULL"))
        assert unjudged.scalar_one() == 0
    assert {bool(k): v for k, v in finals.items()} == {True: 800, False: 100}
    assert_exact(store)
