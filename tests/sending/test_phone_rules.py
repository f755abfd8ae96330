"""A number is checked once per phone rules (`PHONE_RULES`, phonenumbers' metadata): an import
records the rules its numbers were valid under; a send trusts them while they hold, and checks
(then records) numbers stored under other rules or none. And the fast write of a wrapped batch
still turns a token collision into `Conflict`. SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from sendkit import sending_for

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import ContactInput
from clicktrail.services.contacts import (
    PHONE_RULES,
    Spelling,
    import_contacts,
    parse_contacts_csv,
)
from clicktrail.services.ports import NewMessage
from clicktrail.services.sending import recipients
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace

SPELLING = Spelling("--skip-invalid", "--encoding", "--allow-empty")


def valid_under(store: Repos) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.contacts.c.phone, t.contacts.c.phone_valid_under)).all()
    return {str(phone): rules for phone, rules in rows}


def test_an_import_records_the_rules_its_numbers_were_valid_under(store: Repos) -> None:
    ws = make_workspace(store)
    # Stored without a check (as before migration 0018), then imported again: checked now.
    store.contacts.upsert_contacts(ws.id, [ContactInput("+14155550001")], None, NOW_US)
    assert valid_under(store) == {"+14155550001": None}
    data = b"phone,first_name\n+14155550001,Ann\n+14155550002,Bo\n"
    parsed = parse_contacts_csv(io.BytesIO(data), name="c.csv", region=None, spelling=SPELLING)
    done = import_contacts(
        store.contacts, ws, parsed, name="c.csv", skip_invalid=False, list_name=None, now_us=NOW_US,
        spelling=SPELLING,
    )  # fmt: skip
    assert (done.created, done.updated) == (1, 1)
    assert valid_under(store) == {"+14155550001": PHONE_RULES, "+14155550002": PHONE_RULES}
    # A merge that checked nothing keeps what the row had.
    store.contacts.upsert_contacts(ws.id, [ContactInput("+14155550002", "ext")], None, NOW_US)
    assert valid_under(store)["+14155550002"] == PHONE_RULES


def test_a_send_checks_only_numbers_not_valid_under_the_rules_in_force(
    store: Repos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    old = "phonenumbers 0.0.1"
    store.contacts.upsert_contacts(
        ws.id,
        [
            ContactInput("+14155550001", valid_under=PHONE_RULES),  # trusted
            ContactInput("+14155550002", valid_under=old),  # valid, checked again
            ContactInput("+14155550003"),  # never checked
            ContactInput("+15555550100", valid_under=old),  # invalid under today's rules
        ],
        None,
        NOW_US,
    )
    checked: list[str] = []
    real = recipients.is_valid_phone

    def spy(phone: str) -> bool:
        checked.append(phone)
        return real(phone)

    monkeypatch.setattr(recipients, "is_valid_phone", spy)
    cp = make_campaign(store, ws)
    outbox = OutboxProvider(tmp_path / "outbox.jsonl")
    summary = sending_for(store, outbox).send(ws, cp, outbox)
    assert sorted(checked) == ["+14155550002", "+14155550003", "+15555550100"]
    assert (summary.sent, summary.skipped_invalid) == (3, 1)
    # What the send found valid is recorded; the invalid number keeps its old rules, so the
    # next send checks it again.
    assert valid_under(store) == {
        "+14155550001": PHONE_RULES, "+14155550002": PHONE_RULES,
        "+14155550003": PHONE_RULES, "+15555550100": old,
    }  # fmt: skip


def test_a_token_collision_is_a_conflict_and_writes_nothing(store: Repos) -> None:
    # The wrap loop retries with new tokens on `Conflict`; on PostgreSQL the batch goes through
    # COPY, whose unique violation is the driver's error, not SQLAlchemy's.
    ws = make_workspace(store)
    make_domain(store, ws)
    (contact,) = make_contacts(store, ws, 1)
    cp = make_campaign(store, ws)
    with store.engine.connect() as conn:
        link_id = conn.execute(
            sa.select(t.links.c.id).where(t.links.c.campaign_id == cp.id)
        ).scalar()
        before = conn.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar()

    def message(pid: str, token: str) -> NewMessage:
        return NewMessage(pid, cp.id, contact.id, contact.phone, "Hi", "GSM-7", 1, NOW_US,
                          ((token, link_id, None),))  # fmt: skip

    store.messages.insert_messages([message("msg_a", "AAAAAAAAA")])
    with pytest.raises(Conflict):
        store.messages.insert_messages(
            [message("msg_b", "BBBBBBBBB"), message("msg_c", "AAAAAAAAA")]
        )
    with store.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar()
    assert after == before + 1
