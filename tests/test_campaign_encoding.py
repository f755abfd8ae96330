"""Campaign encoding options and budgeting: smart encoding, shift tables, worst case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import CampaignOptions, ContactInput, Workspace
from clicktrail.domain.sms import analyze
from clicktrail.services import campaigns
from clicktrail.services.sending import send_campaign
from clicktrail.sms.outbox import OutboxProvider
from factories import NOW_US, Repos, fixed_clock, make_domain, make_workspace

CURLY = "Hi {first_name}, it’s our “big” sale — 30% off in store and online today only… https://shop.example.com/sale"


def _setup(store: Repos, names: list[str]) -> tuple[Workspace, None]:
    ws = make_workspace(store)
    make_domain(store, ws)
    store.contacts.upsert_contacts(
        ws.id,
        [ContactInput(f"+1415555{i:04d}", None, n) for i, n in enumerate(names)],
        None,
        NOW_US,
    )
    return ws, None


def _send(
    store: Repos, ws: object, name: str, template: str, tmp_path: Path, **opts: object
) -> list[dict[str, object]]:
    cp = campaigns.create_campaign(
        store, ws, name=name, template=template, now_us=NOW_US,
        options=CampaignOptions(**opts),
    )  # fmt: skip
    outbox = tmp_path / f"{name}.jsonl"
    send_campaign(store, ws, cp, OutboxProvider(outbox), clock=fixed_clock())
    return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]


def test_smart_encoding_keeps_messages_gsm7_but_never_touches_values(
    store: Repos, tmp_path: Path
) -> None:
    # The second contact's own name has a curly apostrophe: it must reach them as written,
    # which keeps their message UCS-2 while the first one becomes GSM-7.
    ws, _ = _setup(store, ["Ann", "D’Arcy"])
    plain = _send(store, ws, "plain", CURLY, tmp_path)
    smart = _send(store, ws, "smart", CURLY, tmp_path, smart_encoding=True)
    assert {m["encoding"] for m in plain} == {"UCS-2"}
    by_to = {m["to"]: m for m in smart}
    ann, darcy = by_to["+14155550000"], by_to["+14155550001"]
    assert ann["encoding"] == "GSM-7"
    assert ann["segments"] == 1
    assert str(ann["body"]).startswith('Hi Ann, it\'s our "big" sale - 30% off')
    assert "only... https://sms.example.com/c/" in str(ann["body"])
    assert "D’Arcy" in str(darcy["body"])  # the value is untouched
    assert darcy["encoding"] == "UCS-2"
    # Recorded segments match the body actually written.
    for m in smart:
        assert analyze(str(m["body"])).segments == m["segments"]


def test_shift_table_campaign_counts_with_the_national_table(store: Repos, tmp_path: Path) -> None:
    ws, _ = _setup(store, ["Şule"])
    template = (
        "Merhaba {first_name}, büyük indirim başladı! Ğ ğ İ ı ş Ş: https://shop.example.com/tr"
    )
    default = _send(store, ws, "tr-default", template, tmp_path)
    turkish = _send(store, ws, "tr", template, tmp_path, shift_table="turkish")
    assert default[0]["encoding"] == "UCS-2"
    assert turkish[0]["encoding"] == "GSM-7"
    assert turkish[0]["body"] == default[0]["body"].replace(  # same text, only links differ
        str(default[0]["body"]).rsplit("/", 1)[1], str(turkish[0]["body"]).rsplit("/", 1)[1]
    )


def test_unknown_shift_table_is_refused_at_creation(store: Repos) -> None:
    ws, _ = _setup(store, ["Ann"])
    with pytest.raises(InvalidInput, match="klingon"):
        campaigns.create_campaign(
            store, ws, name="x", template="hi", now_us=NOW_US,
            options=CampaignOptions(shift_table="klingon"),
        )  # fmt: skip
    assert store.campaigns.list_campaigns(ws.id) == []


def test_preview_budgets_the_worst_case_and_suggests_smart_encoding(store: Repos) -> None:
    long_name = "Maximiliana-Alexandrina " * 3
    ws, _ = _setup(store, ["Ann", long_name.strip(), "李"])
    cp = campaigns.create_campaign(
        store, ws, name="p", now_us=NOW_US,
        template="Hi {first_name}, it’s on: our autumn sale has started, thirty percent off: https://shop.example.com/x",
    )  # fmt: skip
    p = campaigns.preview_campaign(store, ws, cp, "+14155550000")
    assert p.contact_phone == "+14155550000"
    assert p.cost.encoding == "UCS-2"  # the curly apostrophe
    assert p.smart_encoding["would_apply"] is True
    assert p.smart_encoding["enabled"] is False
    assert any("smart encoding would save" in w for w in p.warnings)
    # Tracking is counted: the tracked message is longer than the untracked one.
    assert p.cost.units > 0
    # The worst case takes the longest name (the CJK one is shorter in units).
    assert p.worst_case.units > p.cost.units
    assert p.worst_case.segments > p.cost.segments
    assert any("personalization can add segments" in w for w in p.warnings)


def test_preview_warns_when_a_value_forces_ucs2(store: Repos) -> None:
    ws, _ = _setup(store, ["Ann", "李小龙"])
    cp = campaigns.create_campaign(
        store, ws, name="p", now_us=NOW_US, template="Hi {first_name}: https://shop.example.com/x"
    )
    p = campaigns.preview_campaign(store, ws, cp, "+14155550000")
    assert p.cost.encoding == "GSM-7"
    assert p.worst_case.encoding == "UCS-2"
    assert "some recipients' values force UCS-2" in p.warnings
