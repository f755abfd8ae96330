"""Test sends: a real message with real tracked links, kept out of reports, exports and CTR
(on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sendkit import sending_for

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Receipt
from clicktrail.services.ports import ClickRecord
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from clicktrail.storage.exports import ExportQueries
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.resolver import TokenResolver
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace

HUMAN = Verdict("human", 0, ())


def _click(store: Repos, token: str, n: int) -> ClickRecord:
    tk = t.tokens
    with store.engine.connect() as conn:
        r = conn.execute(sa.select(tk).where(tk.c.token == token)).one()
    return ClickRecord(
        f"clk_{token}_{n}", token, r.campaign_id, r.link_id, r.message_id, r.contact_id,
        NOW_US + n, "GET", "198.51.100.7", "Mozilla/5.0 (iPhone)", {},
    )  # fmt: skip


def test_a_test_send_is_real_but_never_counted(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 3)
    cp = make_campaign(store, ws, "Hi {first_name}: https://shop.example.com/sale")
    outbox = OutboxProvider(tmp_path / "outbox.jsonl")
    sending = sending_for(store, outbox)

    # To a phone of no contact: personalized for the first of the audience.
    first = sending.test_send(ws, cp, outbox, to="+1 (415) 555-9999", region="US")
    assert (first.to, first.status, first.error_code) == ("+14155559999", "sent", None)
    assert first.body.startswith("Hi Name0: https://sms.example.com/c/")
    # To a contact's phone: personalized for that contact; a draft campaign stays a draft.
    mine = sending.test_send(ws, cp, outbox, to="+14155550001")
    assert mine.body.startswith("Hi Name1: ")
    assert store.campaigns.find_campaign(ws.id, cp.slug).status == "draft"  # type: ignore[union-attr]
    lines = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [x["to"] for x in lines] == ["+14155559999", "+14155550001"]

    # The links are real: the redirect resolves them.
    token = first.links[0].rsplit("/", 1)[1]
    resolver = TokenResolver(store.engine)
    target = resolver.resolve(token)
    resolver.close()
    assert target is not None
    assert target.destination.startswith("https://shop.example.com/sale?utm_source=sms")

    # The real send still reaches the contact who also got a test (a unique key per send).
    summary = sending.send(ws, cp, outbox)
    assert (summary.created, summary.sent) == (3, 3)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.messages.c.to_phone, t.messages.c.is_test).where(
                t.messages.c.campaign_id == cp.id
            )
        ).all()
    assert sorted(rows) == sorted(
        [("+14155559999", True), ("+14155550001", True), ("+14155550000", False),
         ("+14155550001", False), ("+14155550002", False)]
    )  # fmt: skip

    # One human click on the test message, one on a real one, both delivered.
    real_token = next(
        tok
        for tok, to, _ in store.messages.sample_links(cp.id, 100)
        if to == "+14155550002" and tok not in (token,)
    )
    test_mid = store.messages.message_status(first.message_id)
    assert test_mid is not None and test_mid["is_test"]
    # Every message delivered, the test ones too: they still must not count.
    everything = store.messages.queued_or_sent_ids(cp.id, 100)
    assert len(everything) == 5
    outcome = store.messages.apply_receipts(
        ws.id, [Receipt(mid, "delivered", NOW_US) for mid in everything],
        skip_unknown=False, source="test", now_us=NOW_US,
    )  # fmt: skip
    assert outcome.applied == 5
    store.clicks.insert_clicks(
        [_click(store, token, 1), _click(store, real_token, 2)], [HUMAN, HUMAN]
    )

    report = store.reports.campaign_report(cp)
    assert (report.messages, report.sent, report.delivered) == (3, 3, 3)
    assert (report.total_clicks, report.unique_clicks, report.requests) == (1, 1, 1)
    assert report.ctr == pytest.approx(1 / 3)
    full = ReportQueries(store.engine).full_report(cp, now_us=NOW_US, first_page=10)
    assert (full.summary.total_clicks, full.summary.unique_clicks) == (1, 1)
    assert [r.phone for r in full.recipients.items] == ["+14155550002"]
    assert sum(c.recipients for c in full.countries) == 3
    compare = ReportQueries(store.engine).compare(ws.id, since_us=None, until_us=None)
    assert [(x.delivered, x.unique_clicks) for x in compare] == [(3, 1)]

    exports = ExportQueries(store.engine)
    msgs = [m for chunk in exports.message_chunks(ws.id, cp.id, None, None, 100) for m in chunk]
    assert sorted(m.phone for m in msgs) == ["+14155550000", "+14155550001", "+14155550002"]
    clicks = [
        c for chunk in exports.click_event_chunks(ws.id, None, None, None, 100) for c in chunk
    ]
    assert [c.phone for c in clicks] == ["+14155550002"]

    st = sending.status(cp)
    assert (st.created, st.counts.sent) == (3, 3)


def test_test_send_checks_its_input(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    cp = make_campaign(store, ws)
    outbox = OutboxProvider(tmp_path / "outbox.jsonl")
    sending = sending_for(store, outbox)
    with pytest.raises(NotFound, match="import contacts first") as nf:
        sending.test_send(ws, cp, outbox, to="+14155550100")
    assert nf.value.field == "contact"
    make_contacts(store, ws, 1)
    for bad in ("", "12", "+1555"):
        with pytest.raises(InvalidInput) as exc:
            sending.test_send(ws, cp, outbox, to=bad)
        assert exc.value.field == "to"
    with pytest.raises(NotFound) as nf:
        sending.test_send(ws, cp, outbox, to="+14155550100", contact_ref="nobody")
    assert nf.value.field == "contact"
    assert not (tmp_path / "outbox.jsonl").exists()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar() == 0
