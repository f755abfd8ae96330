"""The SQL store on SQLite and PostgreSQL: schema, contacts, receipts, clicks, reports, sends."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.models import Campaign, ContactInput, Receipt, Workspace
from clicktrail.domain.status import Status
from clicktrail.services.ports import ClickRecord, OutgoingSms, SendResult
from clicktrail.services.receipts import record_receipts
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables
from clicktrail.storage.messages import MessageQueries
from clicktrail.storage.resolver import TokenResolver
from clicktrail.storage.sending import SqlSendJobs
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    phone,
    send,
    tokens_of,
)

T0 = NOW_US + 10_000_000
T1 = NOW_US + 20_000_000


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def outbox_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class HoldingProvider:
    """Sends like the outbox, except that messages to `hold` phones stay queued: it refuses
    them for now and pauses the send (a sending job would otherwise retry them, issue 7)."""

    name = "holding"

    def __init__(self, outbox: Path, hold: set[str] = frozenset(), *, store: Repos) -> None:  # type: ignore[assignment]
        self.outbox = OutboxProvider(outbox)
        self.hold = hold
        self.store = store

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        go = [m for m in batch if m.to not in self.hold]
        if len(go) < len(batch):
            with self.store.engine.begin() as conn:
                conn.execute(tables.send_jobs.update().values(state="paused"))
        sent = {r.message_id: r for r in self.outbox.send(go)}
        return [sent.get(m.message_id, SendResult(m.message_id, Status.QUEUED)) for m in batch]


class ProcessDied(BaseException):
    """Stands for the sending process dying mid-call: a send loop handles provider errors
    (issue 7), but nothing runs after a kill."""


class CrashingProvider:
    """Hands `ok_batches` batches to the outbox, then raises (optionally after writing)."""

    name = "outbox"

    def __init__(self, outbox: Path, ok_batches: int, write_then_crash: bool = False) -> None:
        self.outbox = OutboxProvider(outbox)
        self.left = ok_batches
        self.write_then_crash = write_then_crash

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        if self.left == 0:
            if self.write_then_crash:
                self.outbox.send(batch)  # on disk, but the process dies before recording it
            raise ProcessDied("provider crashed")
        self.left -= 1
        return self.outbox.send(batch)


class FlakyMessages(MessageQueries):
    """Messages whose `insert_messages` raises after `ok_inserts` calls (a crash mid-wrap)."""

    def __init__(self, engine: sa.Engine, ok_inserts: int) -> None:
        super().__init__(engine)
        self._left = ok_inserts

    def insert_messages(self, batch: Any, also: Any = None) -> None:
        if self._left == 0:
            raise RuntimeError("crashed while wrapping")
        self._left -= 1
        super().insert_messages(batch, also)


def flaky_store(store: Repos, ok_inserts: int) -> Repos:
    """`store` whose sending jobs wrap through `FlakyMessages`."""
    flaky = FlakyMessages(store.engine, ok_inserts)
    return dataclasses.replace(store, send_jobs=SqlSendJobs(store.engine, messages=flaky))


def sent_campaign(
    store: Repos, tmp_path: Path, n: int = 3, host: str = "sms.example.com", **kw: Any
) -> tuple[Workspace, Campaign, list[str]]:
    """A workspace with `n` contacts and a campaign sent to them; returns its message ids."""
    ws = make_workspace(store)
    make_domain(store, ws, host)
    make_contacts(store, ws, n, **kw)
    cp = make_campaign(store, ws)
    send(store, ws, cp, tmp_path / f"outbox-{ws.slug}.jsonl")
    return ws, cp, message_ids(store, cp)


# -- (1) schema -----------------------------------------------------------------------------------


def test_migrated_schema_matches_the_table_definitions(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []


# -- (2) contacts ---------------------------------------------------------------------------------


def test_upsert_merges_known_contacts_later_non_empty_values_win(store: Repos) -> None:
    ws = make_workspace(store)
    first = ContactInput(phone(1), "e1", "Ann", {"city": "Oslo", "tier": "gold"})
    assert store.contacts.upsert_contacts(ws.id, [first], None, NOW_US) == (1, 0)
    later = ContactInput(phone(1), None, "Anna", {"city": "", "tier": "silver", "new": "x"})
    other = ContactInput(phone(2), None, None, {})
    assert store.contacts.upsert_contacts(ws.id, [later, other], None, NOW_US + 1) == (1, 1)
    assert store.contacts.count_contacts(ws.id) == 2
    c = store.contacts.find_contact(ws.id, phone(1))
    assert c is not None
    assert (c.external_id, c.first_name) == ("e1", "Anna")
    assert c.attributes == {"city": "Oslo", "tier": "silver", "new": "x"}
    assert store.contacts.find_contact(ws.id, "e1") == c
    assert store.contacts.attribute_names(ws.id) == {"city", "tier", "new"}


def test_upsert_is_per_workspace(store: Repos) -> None:
    a, b = make_workspace(store), make_workspace(store)
    store.contacts.upsert_contacts(a.id, [ContactInput(phone(1), "a")], None, NOW_US)
    assert store.contacts.upsert_contacts(b.id, [ContactInput(phone(1), "b")], None, NOW_US) == (
        1,
        0,
    )
    ca, cb = (
        store.contacts.find_contact(a.id, phone(1)),
        store.contacts.find_contact(b.id, phone(1)),
    )
    assert ca is not None and cb is not None
    assert (ca.external_id, cb.external_id) == ("a", "b")


def test_duplicate_rows_of_one_file_are_merged_before_storing(store: Repos) -> None:
    import io

    from clicktrail.services.contacts import Spelling, import_contacts, parse_contacts_csv

    ws = make_workspace(store)
    data = (
        "phone,first_name,external_id,city\n"
        f"{phone(1)},Ann,,Oslo\n"
        f"{phone(2)},Bo,b2,\n"
        f"{phone(1)},,a1,Bergen\n"
    ).encode()
    spelling = Spelling(skip_invalid="-s", encoding="-e", allow_empty="-a")
    parsed = parse_contacts_csv(io.BytesIO(data), name="c.csv", region=None, spelling=spelling)
    result = import_contacts(
        store.contacts, ws, parsed, name="c.csv", skip_invalid=False, list_name=None, now_us=NOW_US,
        spelling=spelling,
    )  # fmt: skip
    assert (result.rows, result.created, result.updated, result.duplicates) == (3, 2, 0, 1)
    assert store.contacts.count_contacts(ws.id) == 2
    c = store.contacts.find_contact(ws.id, phone(1))
    assert c is not None
    assert (c.first_name, c.external_id, c.attributes) == ("Ann", "a1", {"city": "Bergen"})


def test_list_membership_is_not_doubled_and_limits_the_audience(store: Repos) -> None:
    ws = make_workspace(store)
    make_contacts(store, ws, 3, list_name="vip")
    make_contacts(store, ws, 2, start=1, list_name="vip")  # 1, 2 again and 3 new
    make_contacts(store, ws, 2, start=10)  # not on the list
    list_id = store.contacts.find_list(ws.id, "vip")
    assert list_id is not None
    assert store.contacts.find_list(ws.id, "nope") is None
    members = store.contacts.audience(ws.id, list_id, 0, 100)
    assert [c.phone for c in members] == [phone(0), phone(1), phone(2)]
    assert len(store.contacts.audience(ws.id, None, 0, 100)) == 5
    page = store.contacts.audience(ws.id, None, members[0].id, 2)
    assert [c.phone for c in page] == [phone(1), phone(2)]


# -- (3) receipts ---------------------------------------------------------------------------------


def queued_campaign(store: Repos, tmp_path: Path, n: int = 2) -> tuple[Workspace, list[str]]:
    """A campaign whose messages are stored but never handed over (sent_us empty)."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, n)
    cp = make_campaign(store, ws)
    hold = {phone(i) for i in range(n)}
    held = HoldingProvider(tmp_path / "o.jsonl", hold, store=store)
    send(store, ws, cp, tmp_path / "o.jsonl", provider=held)
    ids = message_ids(store, cp)
    assert all(store.messages.message_status(i)["status"] == "queued" for i in ids)  # type: ignore[index]
    return ws, ids


def test_late_sent_receipt_keeps_delivered_and_fills_sent_time(
    store: Repos, tmp_path: Path
) -> None:
    ws, (m1, _) = queued_campaign(store, tmp_path)
    out = store.messages.apply_receipts(
        ws.id,
        [Receipt(m1, "delivered", T1), Receipt(m1, "sent", T0)],
        skip_unknown=False,
        source="test",
        now_us=T1,
    )
    assert (out.applied, out.unchanged, out.unknown) == (1, 1, [])
    st = store.messages.message_status(m1)
    assert st is not None
    assert (st["status"], st["delivered_us"], st["sent_us"]) == ("delivered", T1, T0)
    assert st["failed_us"] is None


def test_late_sent_receipt_does_not_overwrite_a_known_sent_time(
    store: Repos, tmp_path: Path
) -> None:
    ws, _cp, (m1, *_) = sent_campaign(store, tmp_path)
    sent_us = store.messages.message_status(m1)["sent_us"]  # type: ignore[index]
    assert sent_us is not None
    store.messages.apply_receipts(
        ws.id, [Receipt(m1, "delivered", T1)], skip_unknown=False, source="t", now_us=T1
    )
    out = store.messages.apply_receipts(
        ws.id, [Receipt(m1, "sent", T1 + 5)], skip_unknown=False, source="t", now_us=T1
    )
    assert (out.applied, out.unchanged) == (0, 1)
    st = store.messages.message_status(m1)
    assert (st["status"], st["sent_us"]) == ("delivered", sent_us)  # type: ignore[index]


def test_final_status_is_terminal_and_repeats_are_unchanged(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    ws, _cp, (m1, m2, m3) = sent_campaign(store, tmp_path)
    first = store.messages.apply_receipts(
        ws.id,
        [Receipt(m1, "delivered", T0), Receipt(m2, "failed", T0), Receipt(m1, "failed", T1)],
        skip_unknown=False,
        source="t",
        now_us=T1,
    )
    assert (first.applied, first.unchanged) == (2, 1)
    again = store.messages.apply_receipts(
        ws.id,
        [Receipt(m1, "delivered", T1), Receipt(m2, "delivered", T1), Receipt(m3, "sent", T1)],
        skip_unknown=False,
        source="t",
        now_us=T1,
    )
    assert (again.applied, again.unchanged) == (0, 3)
    s1, s2, s3 = (store.messages.message_status(m) for m in (m1, m2, m3))
    assert s1 is not None and s2 is not None and s3 is not None
    assert (s1["status"], s1["delivered_us"], s1["failed_us"]) == ("delivered", T0, None)
    assert (s2["status"], s2["failed_us"], s2["delivered_us"]) == ("failed", T0, None)
    assert s3["status"] == "sent"
    # Every receipt is logged, applied or not.
    assert count(engine, tables.message_events) == 6
    with engine.connect() as conn:
        applied = conn.execute(
            sa.select(sa.func.count()).where(tables.message_events.c.applied)
        ).scalar_one()
    assert applied == 2


def snapshot(store: Repos, ids: Sequence[str]) -> list[dict[str, Any] | None]:
    return [store.messages.message_status(i) for i in ids]


def test_unknown_message_id_rejects_the_batch_and_changes_nothing(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    ws, _cp, ids = sent_campaign(store, tmp_path)
    before = snapshot(store, ids)
    out = store.messages.apply_receipts(
        ws.id,
        [Receipt(ids[0], "delivered", T0), Receipt("msg_nope", "delivered", T0)],
        skip_unknown=False,
        source="t",
        now_us=T1,
    )
    assert (out.rejected, out.unknown, out.applied) == (True, ["msg_nope"], 0)
    assert snapshot(store, ids) == before
    assert count(engine, tables.message_events) == 0


def test_record_receipts_raises_naming_the_unknown_item_and_writes_nothing(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    ws, _cp, ids = sent_campaign(store, tmp_path)
    before = snapshot(store, ids)
    with pytest.raises(InvalidInput) as info:
        record_receipts(
            store.messages,
            ws,
            [Receipt(ids[0], "delivered", T0), Receipt("msg_nope", "delivered", T0)],
            where=["line 1", "line 2"],
            skip_unknown=False,
            source="t",
            now_us=T1,
        )
    assert "msg_nope" in info.value.message
    assert [p.field for p in info.value.problems] == ["line 2: message_id"]
    assert info.value.field == "line 2: message_id"
    assert snapshot(store, ids) == before
    assert count(engine, tables.message_events) == 0


def test_skip_unknown_applies_the_rest_and_returns_unknown_ids(
    store: Repos, tmp_path: Path
) -> None:
    ws, _cp, ids = sent_campaign(store, tmp_path)
    out = store.messages.apply_receipts(
        ws.id,
        [
            Receipt("msg_x", "delivered", T0),
            Receipt(ids[0], "delivered", T0),
            Receipt("msg_it's", "sent", T0),
        ],
        skip_unknown=True,
        source="t",
        now_us=T1,
    )
    assert (out.applied, out.unchanged, out.unknown) == (1, 0, ["msg_x", "msg_it's"])
    assert out.rejected is False
    assert store.messages.message_status(ids[0])["status"] == "delivered"  # type: ignore[index]


def test_message_of_another_workspace_counts_as_unknown(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    ws_a, _ca, ids_a = sent_campaign(store, tmp_path, n=1, host="a.example.com")
    _ws_b, _cb, ids_b = sent_campaign(store, tmp_path, n=1, host="b.example.com")
    with pytest.raises(InvalidInput, match=ids_b[0]):
        record_receipts(
            store.messages,
            ws_a,
            [Receipt(ids_b[0], "delivered", T0)],
            where=["/0"],
            skip_unknown=False,
            source="t",
            now_us=0,
        )
    out = store.messages.apply_receipts(
        ws_a.id,
        [Receipt(ids_b[0], "delivered", T0), Receipt(ids_a[0], "delivered", T0)],
        skip_unknown=True,
        source="t",
        now_us=0,
    )
    assert (out.applied, out.unknown) == (1, [ids_b[0]])
    assert store.messages.message_status(ids_b[0])["status"] == "sent"  # type: ignore[index]
    assert count(engine, tables.message_events) == 1


# -- (4) clicks -----------------------------------------------------------------------------------


def click(cid: str, target: Any, method: str = "GET", token: str = "t") -> ClickRecord:
    return ClickRecord(
        cid,
        token,
        target.campaign_id,
        target.link_id,
        target.message_id,
        target.contact_id,
        NOW_US,
        method,
        "203.0.113.9",
        "UA",
        {"accept": "*/*"},
    )


def resolve_all(engine: sa.Engine, tokens: Sequence[str]) -> list[Any]:
    resolver = TokenResolver(engine)
    try:
        found = [resolver.resolve(tok) for tok in tokens]
    finally:
        resolver.close()
    assert all(f is not None for f in found)
    return found


def test_insert_clicks_is_idempotent_on_click_id(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    _ws, cp, _ids = sent_campaign(store, tmp_path, n=1)
    (target,) = resolve_all(engine, [tokens_of(store, cp)[0][0]])
    batch = [click("c1", target), click("c2", target, "HEAD")]
    store.clicks.insert_clicks(batch)
    store.clicks.insert_clicks(batch)
    store.clicks.insert_clicks([click("c2", target), click("c3", target)])
    assert store.clicks.count_clicks() == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                tables.clicks.c.click_id, tables.clicks.c.is_click, tables.clicks.c.headers
            ).order_by(tables.clicks.c.click_id)
        ).all()
    assert [(r[0], r[1]) for r in rows] == [("c1", True), ("c2", False), ("c3", True)]
    assert rows[0][2] == {"accept": "*/*"}
    assert store.clicks.insert_clicks([]) == 0


# -- (5) report -----------------------------------------------------------------------------------


def test_campaign_report_counts_a_hand_built_case(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 6)
    cp = make_campaign(store, ws, "A https://a.example.com/x B https://b.example.com/y")
    out = tmp_path / "o.jsonl"
    send(store, ws, cp, out, provider=HoldingProvider(out, hold={phone(5)}, store=store))
    ids = message_ids(store, cp)
    store.messages.apply_receipts(
        ws.id,
        [
            Receipt(ids[0], "delivered", T0),
            Receipt(ids[1], "delivered", T0),
            Receipt(ids[2], "failed", T0),
            Receipt(ids[3], "undelivered", T0),
        ],
        skip_unknown=False,
        source="t",
        now_us=T1,
    )
    links = tokens_of(store, cp)  # ordered by message, then link index
    tok = {(i, j): links[2 * i + j][0] for i in range(6) for j in range(2)}
    targets = dict(zip(tok, resolve_all(engine, list(tok.values())), strict=True))
    clicks = [
        click("k1", targets[0, 0]),
        click("k2", targets[0, 0]),
        click("k3", targets[0, 1]),
        click("k4", targets[1, 0]),
        click("k5", targets[1, 0], "HEAD"),
        click("k6", targets[2, 1], "HEAD"),
    ]
    store.clicks.insert_clicks(clicks)
    # Another campaign's clicks never leak into this report.
    other = make_campaign(store, ws, "C https://c.example.com/z")

    cp = store.campaigns.find_campaign(ws.id, cp.slug)  # type: ignore[assignment]
    r = store.reports.campaign_report(cp)
    assert (r.messages, r.sent, r.delivered, r.failed, r.undelivered, r.queued) == (
        6, 5, 2, 1, 1, 1,
    )  # fmt: skip
    assert (r.total_clicks, r.unique_clicks, r.requests) == (4, 2, 6)
    assert r.ctr == 1.0
    assert r.repeat_click_rate == 2.0
    l0, l1 = r.links
    assert (l0.link, l0.url, l0.total_clicks, l0.unique_clicks, l0.requests, l0.ctr) == (
        1, "https://a.example.com/x", 3, 2, 4, 1.0,
    )  # fmt: skip
    assert (l1.link, l1.total_clicks, l1.unique_clicks, l1.requests, l1.ctr) == (2, 1, 1, 2, 0.5)
    empty = store.reports.campaign_report(other)
    assert (empty.messages, empty.total_clicks, empty.requests, empty.ctr) == (0, 0, 0, None)
    assert empty.repeat_click_rate is None
    assert [lk.total_clicks for lk in empty.links] == [0]


def test_ctr_is_none_when_nothing_is_delivered(
    store: Repos, tmp_path: Path, engine: sa.Engine
) -> None:
    _ws, cp, _ids = sent_campaign(store, tmp_path, n=2)
    (target,) = resolve_all(engine, [tokens_of(store, cp)[0][0]])
    store.clicks.insert_clicks([click("k1", target)])
    r = store.reports.campaign_report(cp)
    assert (r.sent, r.delivered, r.total_clicks, r.unique_clicks) == (2, 0, 1, 1)
    assert r.ctr is None
    assert r.links[0].ctr is None
    assert r.as_dict()["ctr"] is None


# -- (6) resumable sends --------------------------------------------------------------------------


def assert_sent_exactly_once(store: Repos, ws: Workspace, cp: Campaign, outbox: Path) -> None:
    ids = message_ids(store, cp)
    assert len(ids) == store.contacts.count_contacts(ws.id)
    to = [store.messages.message_status(i)["to_phone"] for i in ids]  # type: ignore[index]
    assert sorted(to) == sorted({c.phone for c in store.contacts.audience(ws.id, None, 0, 100)})
    lines = outbox_lines(outbox)
    assert sorted(x["to"] for x in lines) == sorted(to)
    assert sorted(x["message_id"] for x in lines) == sorted(ids)
    assert all(store.messages.message_status(i)["status"] == "sent" for i in ids)  # type: ignore[index]


def test_send_resumes_after_a_crash_while_wrapping(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 5)
    cp = make_campaign(store, ws)
    outbox = tmp_path / "o.jsonl"
    with pytest.raises(RuntimeError, match="wrapping"):
        send(flaky_store(store, ok_inserts=1), ws, cp, outbox, batch_size=2)  # type: ignore[arg-type]
    assert len(message_ids(store, cp)) == 2
    assert outbox_lines(outbox) == []
    summary = send(store, ws, cp, outbox, batch_size=2)
    assert (summary.created, summary.sent) == (3, 5)
    assert_sent_exactly_once(store, ws, cp, outbox)


def test_send_resumes_after_a_provider_crash(store: Repos, tmp_path: Path) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 5)
    cp = make_campaign(store, ws)
    outbox = tmp_path / "o.jsonl"
    with pytest.raises(ProcessDied, match="provider crashed"):
        send(store, ws, cp, outbox, provider=CrashingProvider(outbox, 1), batch_size=2)
    assert len(message_ids(store, cp)) == 5
    assert len(outbox_lines(outbox)) == 2
    resumed = store.campaigns.find_campaign(ws.id, cp.slug)
    assert resumed is not None and resumed.status == "sending"
    summary = send(store, ws, resumed, outbox, batch_size=2)
    assert (summary.created, summary.sent) == (0, 3)
    assert_sent_exactly_once(store, ws, cp, outbox)
    done = store.campaigns.find_campaign(ws.id, cp.slug)
    assert done is not None and done.status == "sent"
    with pytest.raises(Conflict, match="already been sent"):
        send(store, ws, done, outbox)


def test_crash_between_provider_write_and_record_resends_nothing(
    store: Repos, tmp_path: Path
) -> None:
    """The batch in flight when the process died is reconciled with the outbox, not resent."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 5)
    cp = make_campaign(store, ws)
    outbox = tmp_path / "o.jsonl"
    crash = CrashingProvider(outbox, ok_batches=1, write_then_crash=True)
    with pytest.raises(ProcessDied):
        send(store, ws, cp, outbox, provider=crash, batch_size=2)
    first_batch = [x["message_id"] for x in outbox_lines(outbox)[:2]]
    in_flight = [x["message_id"] for x in outbox_lines(outbox)[2:]]
    assert len(in_flight) == 2
    send(store, ws, cp, outbox, batch_size=2)
    written = [x["message_id"] for x in outbox_lines(outbox)]
    ids = message_ids(store, cp)
    assert sorted(written) == sorted(ids)  # everyone exactly once, the in-flight batch too
    assert set(first_batch) | set(in_flight) <= set(written)


def test_outbox_holds_each_recipient_once_even_after_a_crash_mid_batch(
    store: Repos, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 4)
    cp = make_campaign(store, ws)
    outbox = tmp_path / "o.jsonl"
    with pytest.raises(ProcessDied):
        send(store, ws, cp, outbox, provider=CrashingProvider(outbox, 0, True), batch_size=2)
    send(store, ws, cp, outbox, batch_size=2)
    assert_sent_exactly_once(store, ws, cp, outbox)


def test_messages_the_provider_left_queued_are_sent_by_the_next_run(
    store: Repos, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 2)
    cp = make_campaign(store, ws)
    outbox = tmp_path / "o.jsonl"
    hold = HoldingProvider(outbox, {phone(0), phone(1)}, store=store)
    assert send(store, ws, cp, outbox, provider=hold).sent == 0
    again = store.campaigns.find_campaign(ws.id, cp.slug)
    assert again is not None
    store.send_jobs.set_state(cp.id, "running", 0, expect=("paused",))  # resume
    assert send(store, ws, again, outbox).sent == 2
