"""The hand-built attribution scenario (tests/attribution/): two campaigns, five contacts,
seven conversions, every credit worked out in docs/attribution.md's terms.

Campaign A (``spring``) is delivered at TA with links a1 (cta), a2 (other) and an opt-out
link; campaign B (``summer``) at TB = TA + 2 days with one link b1. Every contact gets both.

| contact | requests (final unless said)                        | conversion (value)            |
|---------|------------------------------------------------------|-------------------------------|
| c0      | a1 at TA+1h, b1 at TB+1h                             | X0 at TB+3h (100 USD); X5 at TB+6h by click id only (10 USD) |
| c1      | a2 at TA+10min                                       | X1 at TB+2h (50 USD); X6 at TA+6d (5 USD) |
| c2      | none                                                 | X2 at TB+5h (30 USD)          |
| c3      | a1 at TA+30min scanner; opt-out at TA+1h; b1 at TB+1h preview | X3 at TB+4h (20 EUR) |
| c4      | a1 at TA+2h, human but provisional                   | X4 at TA+1d (no value)        |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.models import Campaign, ContactInput, Receipt, Workspace
from clicktrail.services.ports import ClickRecord
from clicktrail.storage import tables as t
from clicktrail.storage.attribution import AttributionQueries
from factories import NOW_US, Repos, make_campaign, make_domain, make_workspace, message_ids, send

S = 1_000_000
MIN, H, D = 60 * S, 3600 * S, 86400 * S
TA = NOW_US + H
TB = TA + 2 * D
HUMAN = Verdict("human", 0, (), "t1")
SCANNER = Verdict("scanner", 95, ("NET_HOSTING",), "t1")
PREVIEW = Verdict("preview", 100, ("UA_PREVIEW_IMESSAGE",), "t1")

# (contact, campaign, link index, at, verdict, final)
CLICKS = [
    (0, "A", 0, TA + H, HUMAN, True),
    (0, "B", 0, TB + H, HUMAN, True),
    (1, "A", 1, TA + 10 * MIN, HUMAN, True),
    (3, "A", 0, TA + 30 * MIN, SCANNER, True),
    (3, "A", 2, TA + H, HUMAN, True),  # the opt-out link
    (3, "B", 0, TB + H, PREVIEW, True),
    (4, "A", 0, TA + 2 * H, HUMAN, False),
]
# name: (contact or None, at, value micros, currency, click id)
CONVERSIONS = {
    "X0": (0, TB + 3 * H, 100_000_000, "USD", None),
    "X1": (1, TB + 2 * H, 50_000_000, "USD", None),
    "X2": (2, TB + 5 * H, 30_000_000, "USD", None),
    "X3": (3, TB + 4 * H, 20_000_000, "EUR", None),
    "X4": (4, TA + D, None, None, None),
    "X5": (None, TB + 6 * H, 10_000_000, "USD", "click-0-B"),
    "X6": (1, TA + 6 * D, 5_000_000, "USD", None),
}


@dataclass
class Scenario:
    store: Repos
    queries: AttributionQueries
    ws: Workspace
    a: Campaign
    b: Campaign
    contacts: list[int]
    clicks: dict[tuple[int, str], int]  # (contact, campaign) -> the first click's row id
    messages: dict[tuple[int, str], int]  # (contact, campaign) -> message id
    conversions: dict[str, int]  # name -> conversion id

    def credits(self) -> dict[tuple[str, str], tuple[str, str | None, int | None]]:
        """Return {(conversion, model): (kind, campaign A/B or None, link index)}."""
        names = {v: k for k, v in self.conversions.items()}
        camp = {self.a.id: "A", self.b.id: "B"}
        links = {lk.id: i for c in (self.a, self.b) for i, lk in enumerate(c.links)}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.conversion_credits.c.conversion_id, t.conversion_credits.c.model,
                          t.conversion_credits.c.kind, t.conversion_credits.c.campaign_id,
                          t.conversion_credits.c.link_id)
            ).all()  # fmt: skip
        return {
            (names[cid], model): (kind, camp.get(cp) if cp else None, links.get(lk) if lk else None)
            for cid, model, kind, cp, lk in rows
        }


def build(store: Repos, tmp_path: Path, host: str = "sms.example.com") -> Scenario:
    """Build the scenario (no credits yet) in a new workspace whose short domain is `host`."""
    ws = make_workspace(store)
    make_domain(store, ws, host)
    phones = [f"+1415555{i:04d}" for i in range(5)]
    store.contacts.upsert_contacts(
        ws.id, [ContactInput(p, f"ext-{i}", None, {}) for i, p in enumerate(phones)], None, NOW_US
    )
    contacts = [store.contacts.find_contact(ws.id, p).id for p in phones]  # type: ignore[union-attr]
    a = make_campaign(
        store, ws, "A https://a.example.com/1 B https://a.example.com/2 stop https://a.example.com/s",
        slug="spring", link_roles={1: "other", 2: "optout"},
    )  # fmt: skip
    b = make_campaign(store, ws, "Summer https://b.example.com/1", slug="summer")
    campaigns = {"A": a, "B": b}
    messages: dict[tuple[int, str], int] = {}
    for name, cp, at in (("A", a, TA), ("B", b, TB)):
        send(store, ws, cp, tmp_path / f"outbox-{name}.jsonl")
        ids = message_ids(store, cp)
        store.messages.apply_receipts(
            ws.id, [Receipt(i, "delivered", at) for i in ids], skip_unknown=False, source="t",
            now_us=at,
        )  # fmt: skip
        with store.engine.connect() as conn:
            for mid, contact in conn.execute(
                sa.select(t.messages.c.id, t.messages.c.contact_id).where(
                    t.messages.c.campaign_id == cp.id
                )
            ):
                messages[(contacts.index(contact), name)] = mid
    a = store.campaigns.find_campaign(ws.id, "spring")  # type: ignore[assignment]
    b = store.campaigns.find_campaign(ws.id, "summer")  # type: ignore[assignment]
    campaigns = {"A": a, "B": b}
    records, verdicts, finals = [], [], []
    for n, (who, name, link, at, verdict, final) in enumerate(CLICKS):
        cp = campaigns[name]
        records.append(
            ClickRecord(
                f"click-{who}-{name}" if n in (0, 1) else f"click-{n}", f"tok{n}", cp.id,
                cp.links[link].id, messages[(who, name)], contacts[who], at, "GET",
                "203.0.113.9", "Mozilla/5.0", {},
            )
        )  # fmt: skip
        verdicts.append(verdict)
        finals.append(final)
    store.clicks.insert_clicks(records, verdicts)
    store.clicks.save_verdicts([(r.click_id, v, f) for r, v, f in zip(records, verdicts, finals, strict=True) if f])  # fmt: skip
    clicks: dict[tuple[int, str], int] = {}
    with store.engine.connect() as conn:
        for rid, cid in conn.execute(sa.select(t.clicks.c.id, t.clicks.c.click_id)):
            n = next(i for i, r in enumerate(records) if r.click_id == cid)
            clicks.setdefault((CLICKS[n][0], CLICKS[n][1]), rid)
    conversions = {name: add_conversion(store, ws, name, contacts) for name in CONVERSIONS}
    return Scenario(store, AttributionQueries(store.engine), ws, a, b, contacts, clicks,
                    messages, conversions)  # fmt: skip


def add_conversion(store: Repos, ws: Workspace, name: str, contacts: list[int]) -> int:
    """Store conversion `name` of `CONVERSIONS` as the ingest would; return its id."""
    who, at, micros, currency, click_id = CONVERSIONS[name]
    with store.engine.begin() as conn:
        return int(
            conn.execute(
                t.conversions.insert().values(
                    public_id=f"cv_{ws.id}_{name}", workspace_id=ws.id, event="purchase",
                    value_micros=micros, currency=currency, occurred_us=at, received_us=at,
                    click_id=click_id, contact_id=None if who is None else contacts[who],
                    source="api", dedup_key=f"{name}",
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )  # fmt: skip
