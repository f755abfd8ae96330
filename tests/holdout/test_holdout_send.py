"""Held-out contacts get nothing: a campaign with a holdout sent through the real send path
(sending job, outbox provider) on SQLite and PostgreSQL; the draw is stored, reproducible and
stratified; the send counts the holdout apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.holdout import HoldoutSpec
from clicktrail.domain.models import Campaign, CampaignOptions, ContactInput, Workspace
from clicktrail.services.contacts import PHONE_RULES
from clicktrail.services.holdouts import assign_holdout
from clicktrail.services.sending import recipients, send_campaign
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from clicktrail.storage.holdouts import HoldoutQueries
from factories import (
    NOW_US,
    Repos,
    fixed_clock,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    send,
)


def audience(store: Repos) -> Workspace:
    """120 contacts on list A (region north), 80 on list B (region south), 6 of them opted out."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 120, list_name="A", attributes={"region": "north"})
    make_contacts(store, ws, 80, start=120, list_name="B", attributes={"region": "south"})
    with store.engine.begin() as conn:
        conn.execute(
            t.contacts.update()
            .where(t.contacts.c.workspace_id == ws.id, t.contacts.c.phone.like("%0%5"))
            .values(opted_out_us=1)
        )
    return ws


def held_phones(store: Repos, cp: Campaign) -> set[str]:
    with store.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(t.contacts.c.phone)
                .join(t.campaign_holdouts, t.campaign_holdouts.c.contact_id == t.contacts.c.id)
                .where(t.campaign_holdouts.c.campaign_id == cp.id)
            ).scalars()
        )


def outbox_phones(path: Path) -> list[str]:
    return [json.loads(line)["to"] for line in path.read_text().splitlines()]


def test_held_out_contacts_are_never_sent(store: Repos, tmp_path: Path) -> None:
    ws = audience(store)
    opted_out = 200 - len(store.contacts.audience(ws.id, None, 0, 1000))  # opted-in ones
    assert opted_out > 0
    eligible = 200 - opted_out
    cp = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.25, 7, "list")))
    outbox = tmp_path / "outbox.jsonl"
    summary = send(store, ws, cp, outbox, batch_size=37)  # several wrap batches

    held = held_phones(store, cp)
    sent = outbox_phones(outbox)
    assert len(held) == round(0.25 * eligible)
    assert not held & set(sent)
    assert len(sent) == len(set(sent)) == eligible - len(held)
    assert summary.held_out == len(held)
    assert summary.skipped_opted_out == opted_out
    with store.engine.connect() as conn:
        messaged = set(
            conn.execute(
                sa.select(t.messages.c.to_phone).where(t.messages.c.campaign_id == cp.id)
            ).scalars()
        )
    assert not messaged & held  # not even wrapped

    drawn = HoldoutQueries(store.engine).holdout_draw(cp.id)
    assert drawn is not None
    assert (drawn.spec, drawn.eligible, drawn.held) == (cp.options.holdout, eligible, len(held))
    assert {s.name for s in drawn.strata} == {"A", "B"}
    for s in drawn.strata:
        assert abs(s.held - 0.25 * s.eligible) < 1


def test_same_seed_and_audience_same_holdout_in_storage(store: Repos, tmp_path: Path) -> None:
    ws = audience(store)
    spec = HoldoutSpec(0.1, 123456789, "attribute:region")
    one = make_campaign(store, ws, options=CampaignOptions(holdout=spec))
    two = make_campaign(store, ws, options=CampaignOptions(holdout=spec))
    other = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.1, 5)))
    for i, cp in enumerate((one, two, other)):
        send(store, ws, cp, tmp_path / f"outbox{i}.jsonl")
    assert held_phones(store, one) == held_phones(store, two)
    assert held_phones(store, one) != held_phones(store, other)
    drawn = HoldoutQueries(store.engine).holdout_draw(one.id)
    assert drawn is not None
    assert {s.name for s in drawn.strata} == {"north", "south"}


def test_a_second_draw_keeps_the_first(store: Repos) -> None:
    from clicktrail.domain.holdout import draw

    ws = audience(store)
    cp = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.2, 1)))
    ids = [c.id for c in store.contacts.audience(ws.id, None, 0, 1000)]
    repo = HoldoutQueries(store.engine)
    assert repo.save_draw(cp.id, draw(HoldoutSpec(0.2, 1), [(i, "") for i in ids]), 10)
    assert not repo.save_draw(cp.id, draw(HoldoutSpec(0.2, 2), [(i, "") for i in ids]), 20)
    drawn = repo.holdout_draw(cp.id)
    assert drawn is not None
    assert (drawn.spec.seed, drawn.drawn_us) == (1, 10)
    assert len(repo.held_out(cp.id)) == round(0.2 * len(ids))


def test_no_send_without_holdout_storage(store: Repos, tmp_path: Path) -> None:
    ws = audience(store)
    cp = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.2, 1)))
    outbox = tmp_path / "outbox.jsonl"
    with pytest.raises(Conflict, match="holdout"):
        send_campaign(store, ws, cp, OutboxProvider(outbox), clock=fixed_clock())
    assert not outbox.exists() or outbox.read_text() == ""


def test_campaign_holdout_options_are_checked(store: Repos) -> None:
    ws = audience(store)
    with pytest.raises(InvalidInput) as e:
        make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.75, 1)))
    assert e.value.field == "holdout_share"
    with pytest.raises(InvalidInput) as e:
        make_campaign(
            store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.1, 1, "attribute:tier"))
        )
    assert e.value.field == "holdout_stratify"
    assert "'tier'" in e.value.message
    assert store.campaigns.list_campaigns(ws.id) == []


def test_the_draw_trusts_numbers_recorded_valid_under_the_rules_in_force(store: Repos) -> None:
    """Like the send (tests/sending/test_phone_rules.py), the draw checks only numbers not
    recorded valid under `PHONE_RULES` (contacts.phone_valid_under, migration 0018)."""
    ws = make_workspace(store)
    make_domain(store, ws)
    old = "phonenumbers 0.0.1"
    store.contacts.upsert_contacts(
        ws.id,
        [
            ContactInput("+14155550001", valid_under=PHONE_RULES),  # trusted
            ContactInput("+15555550101", valid_under=PHONE_RULES),  # trusted: not checked again
            ContactInput("+14155550002", valid_under=old),  # checked: valid
            ContactInput("+14155550003"),  # never checked: valid
            ContactInput("+15555550100", valid_under=old),  # checked: invalid, not eligible
        ],
        None,
        NOW_US,
    )  # fmt: skip
    cp = make_campaign(store, ws, options=CampaignOptions(holdout=HoldoutSpec(0.5, 7)))
    checked: list[str] = []

    def spy(phone: str) -> bool:
        checked.append(phone)
        return recipients.is_valid_phone(phone)

    record = assign_holdout(HoldoutQueries(store.engine), cp, is_valid_phone=spy,
                            phone_rules=PHONE_RULES, now_us=NOW_US)  # fmt: skip
    assert sorted(checked) == ["+14155550002", "+14155550003", "+15555550100"]
    assert record is not None and (record.eligible, record.held) == (4, 2)
    assert "+15555550100" not in held_phones(store, cp)


def test_audience_strata_read_one_attribute_in_sql(store: Repos) -> None:
    """The stratifying attribute is read in SQL (its value, or the missing stratum), and a name
    SQLite's JSON paths cannot quote falls back to the whole attributes: the same strata."""
    ws = make_workspace(store)
    people = [
        ContactInput("+14155550001", attributes={"region": "north", 'we"ird': "a"}),
        ContactInput("+14155550002", attributes={"region": "south", 'we"ird': "b"}),
        ContactInput("+14155550003", attributes={"other": "x"}),
        ContactInput("+14155550004", attributes={"region": 'say "hi" é'}),
    ]
    store.contacts.upsert_contacts(ws.id, people, "all", NOW_US)
    list_id = store.contacts.find_list(ws.id, "all")
    holdouts = HoldoutQueries(store.engine)
    for list_ref in (None, list_id):
        by = {
            m.phone: m.stratum
            for m in holdouts.audience_strata(ws.id, list_ref, "attribute:region")
        }
        assert by == {"+14155550001": "north", "+14155550002": "south", "+14155550003": "",
                      "+14155550004": 'say "hi" é'}  # fmt: skip
        odd = {
            m.phone: m.stratum
            for m in holdouts.audience_strata(ws.id, list_ref, 'attribute:we"ird')
        }
        assert odd == {"+14155550001": "a", "+14155550002": "b", "+14155550003": "",
                       "+14155550004": ""}  # fmt: skip
