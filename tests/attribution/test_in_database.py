"""Re-attribution in the database (PostgreSQL: `storage.recredit.RECREDIT`) gives exactly the
credits of the Python path (`domain.attribution.attribute` over each contact's touches), row by
row, on random workspaces full of edge cases: ties to the microsecond, touches exactly at and
one microsecond past a window's edge, requests after the conversion, every bot verdict, final
and provisional, HEAD probes, opt-out links, test sends, undelivered and clicked-outside-the-
window messages (no views), campaigns with their own windows and inheriting ones, conversions
by contact, by a stored or a not-yet-stored click id, by message, and by nobody; and another
workspace whose credits must stay untouched. On SQLite, where only the Python path exists, the
same workspaces are attributed by it and the database path is refused. After a window and verdict
change the database writes only the credits that change, and they are again the Python path's
(the revision apart: a credit left as it was keeps its own); a conversion committed during a
re-attribution is credited once, by the next pass."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa

from clicktrail.domain.models import Workspace
from clicktrail.services import attribution
from clicktrail.storage import tables as t
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.sql import is_postgres
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace

MIN = 60_000_000
H = 60 * MIN
T0 = NOW_US + H
# Windows on a grid of 30 minutes, so that touches land exactly on their edges often.
WINDOWS = ["30m", "1h", "2h", "12h", "24h", "3d"]
VERDICTS = [None, "human", "suspect", "preview", "scanner", "automation", "probe"]
NOW = T0 + 60 * 24 * H


def _grid(rng: random.Random) -> int:
    return T0 + rng.randrange(0, 6 * 48) * 30 * MIN


def build(store: Repos, rng: random.Random, contacts_from: int) -> Workspace:
    """A workspace of 4 campaigns (3 links each: cta, other, opt-out), 12 contacts with 0 to 6
    messages, their requests and about 120 conversions; settings on the workspace and on some
    campaigns."""
    ws = make_workspace(store)
    make_domain(store, ws, f"s{contacts_from}.example.com")
    people = [c.id for c in make_contacts(store, ws, 12, start=contacts_from)]
    campaigns = [
        make_campaign(store, ws, "A https://a.example.com/1 B https://a.example.com/2 "
                      "stop https://a.example.com/s", link_roles={1: "other", 2: "optout"})
        for _ in range(4)
    ]  # fmt: skip
    queries = AttributionQueries(store.engine)
    attribution.set_settings(queries, ws, None, click_window=rng.choice(WINDOWS),
                             delivery_window=rng.choice(WINDOWS), now_us=NOW)  # fmt: skip
    attribution.set_settings(queries, ws, campaigns[0], click_window=rng.choice(WINDOWS),
                             delivery_window=rng.choice(WINDOWS), now_us=NOW)  # fmt: skip
    attribution.set_settings(queries, ws, campaigns[1], click_window=rng.choice(WINDOWS),
                             now_us=NOW)  # fmt: skip
    attribution.set_settings(queries, ws, campaigns[2], model="first_click", now_us=NOW)
    messages: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    conversions: list[dict[str, Any]] = []
    touch_times: dict[int, list[int]] = {p: [] for p in people}
    # Fixed cases besides the random ones: contact -3 gets two messages delivered in the same
    # microsecond and never clicked (tied views), contact -2 two messages clicked in the same
    # microsecond (tied clicks), contact -1 nothing at all.
    tied = T0 + 24 * H
    for who, n, click in ((people[-3], 0, False), (people[-3], 1, False), (people[-2], 0, True),
                          (people[-2], 1, True)):  # fmt: skip
        messages.append({
            "public_id": f"m{ws.id}-{len(messages)}", "campaign_id": campaigns[3].id,
            "contact_id": who, "to_phone": "+14155550000", "body": "x", "encoding": "gsm7",
            "segments": 1, "status": "delivered", "queued_us": tied, "sent_us": tied,
            "delivered_us": tied, "status_us": tied, "client_ref": f"tied{n}",
        })  # fmt: skip
        touch_times[who].append(tied + (30 * MIN if click else 0))
    for who in people[:-3]:
        sends: list[int] = []
        for n in range(rng.randrange(0, 7)):
            cp = rng.choice(campaigns)
            # A third sent when another of the contact's messages was: deliveries that tie.
            sent = rng.choice(sends) if sends and rng.random() < 0.35 else _grid(rng)
            sends.append(sent)
            delivered = rng.choice([None, sent, sent + 30 * MIN, sent + 1])
            messages.append({
                "public_id": f"m{ws.id}-{len(messages)}", "campaign_id": cp.id,
                "contact_id": who, "to_phone": "+14155550000", "body": "x", "encoding": "gsm7",
                "segments": 1, "status": "delivered" if delivered else "sent",
                "queued_us": sent, "sent_us": sent, "delivered_us": delivered,
                "status_us": sent, "is_test": rng.random() < 0.1, "client_ref": f"r{n}",
            })  # fmt: skip
            if delivered is not None:
                touch_times[who].append(delivered)
    with store.engine.begin() as conn:
        ids = [int(conn.execute(t.messages.insert().values(**m)).inserted_primary_key[0])  # type: ignore[index]
               for m in messages]  # fmt: skip
    by_campaign = {c.id: c for c in campaigns}
    for mid, m in zip(ids, messages, strict=True):
        cp = by_campaign[m["campaign_id"]]
        base = m["delivered_us"] or m["sent_us"]
        if m["client_ref"].startswith("tied"):
            if m["contact_id"] == people[-2]:
                clicks.append({
                    "click_id": f"k{ws.id}-{len(clicks)}", "token": f"t{len(clicks)}",
                    "campaign_id": cp.id, "link_id": cp.links[0].id, "message_id": mid,
                    "contact_id": m["contact_id"], "at_us": tied + 30 * MIN, "method": "GET",
                    "is_click": True, "headers": {}, "verdict": "human", "final": True,
                })  # fmt: skip
            continue
        for _ in range(rng.choice([0, 0, 1, 2, 3, 6])):
            at = base + rng.choice([0, 0, 30 * MIN, H, 2 * H, 12 * H, 24 * H, 3 * 24 * H, 1])
            verdict = rng.choice(VERDICTS)
            clicks.append({
                "click_id": f"k{ws.id}-{len(clicks)}", "token": f"t{len(clicks)}",
                "campaign_id": cp.id, "link_id": rng.choice(cp.links).id, "message_id": mid,
                "contact_id": m["contact_id"], "at_us": at,
                "method": "HEAD" if verdict == "probe" else "GET",
                "is_click": verdict != "probe" or rng.random() < 0.3, "headers": {},
                "verdict": verdict, "final": rng.random() < 0.8,
            })  # fmt: skip
            touch_times[m["contact_id"]].append(at)
    with store.engine.begin() as conn:
        conn.execute(t.clicks.insert(), clicks)
    windows = [30 * MIN, H, 2 * H, 12 * H, 24 * H, 3 * 24 * H, 5 * 24 * H]
    for n in range(120):
        who = people[-3 + n] if n < 3 else rng.choice(people)
        row: dict[str, Any] = {"contact_id": who, "click_id": None, "message_id": None}
        times = touch_times[who]
        if n < 3:
            at = tied + H
        elif times and rng.random() < 0.8:  # at a touch, exactly a window after it, or just past
            at = rng.choice(times) + rng.choice([0, 0, 1, -1, *windows, *(w + 1 for w in windows)])
        else:
            at = _grid(rng)
        kind = rng.random() if n >= 3 else 1.0
        if kind < 0.1 and clicks:  # by click id only: the click's contact
            row = {"contact_id": None, "click_id": rng.choice(clicks)["click_id"],
                   "message_id": None}  # fmt: skip
        elif kind < 0.15:  # a click id not stored yet: pending, its contact given
            row["click_id"] = f"unknown-{n}"
        elif kind < 0.2 and ids:  # by message only
            row = {"contact_id": None, "click_id": None, "message_id": rng.choice(ids)}
        elif kind < 0.23:  # nobody known
            row = {"contact_id": None, "click_id": f"lost-{n}", "message_id": None}
        conversions.append({
            "public_id": f"cv{ws.id}-{n}", "workspace_id": ws.id, "event": "purchase",
            "value_micros": 1_000_000, "currency": "USD", "occurred_us": at,
            "received_us": at, "source": "api", "dedup_key": f"d{n}", **row,
        })  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(t.conversions.insert(), conversions)
    return ws


def credits(store: Repos, ws: Workspace) -> list[tuple[Any, ...]]:
    cc = t.conversion_credits
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(cc).where(cc.c.workspace_id == ws.id)
                .order_by(cc.c.conversion_id, cc.c.model)
            )
        ]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_database_picks_exactly_the_touches_the_domain_picks(store: Repos, seed: int) -> None:
    rng = random.Random(seed)
    ws, other = build(store, rng, 0), build(store, rng, 100)
    python = AttributionQueries(store.engine, in_database=False)
    for w in (ws, other):
        assert attribution.reattribute(python, w.id, NOW).reattributed == [w.id]
    expected, theirs = credits(store, ws), credits(store, other)
    assert {r[4] for r in expected} == {"click", "view", "none"}  # every kind occurs
    assert any(not r[13] for r in expected)  # and unsettled credits
    if not is_postgres(store.engine):
        assert not AttributionQueries(store.engine).in_database()
        with pytest.raises(ValueError, match="PostgreSQL"):
            AttributionQueries(store.engine, in_database=True)
        return
    db = AttributionQueries(store.engine)
    assert db.in_database()
    with store.engine.begin() as conn:  # nothing left over from the Python path
        conn.execute(
            t.conversion_credits.delete().where(t.conversion_credits.c.workspace_id == ws.id)
        )
    for batch in (7, None):  # batches that split the workspace's ids, and one for all
        done = attribution.reattribute(db, ws.id, NOW, batch)
        assert (done.attributed, done.reattributed) == (120, [ws.id])
        got = credits(store, ws)
        assert len(got) == len(expected)
        for mine, reference in zip(got, expected, strict=True):
            assert mine == reference
    assert credits(store, other) == theirs
    # A window change and rewritten verdicts: the database writes only the credits that change,
    # and they are again those of the Python path (from scratch), the revision apart: a credit
    # that stays keeps the revision it was written under, one that changes gets the new one.
    before = {r[:2]: r for r in credits(store, ws)}
    attribution.set_settings(db, ws, None, click_window="4d", delivery_window="6h", now_us=NOW)
    k = t.clicks
    with store.engine.begin() as conn:
        conn.execute(
            k.update()
            .where((k.c.id % 3 == 0) & k.c.click_id.like(f"k{ws.id}-%"))
            .values(verdict=sa.case((k.c.verdict == "human", "scanner"), else_="human"))
        )
    attribution.request_reattribution(db, [ws.id], NOW)
    revision = db.attribution_revisions(ws.id)[0]
    assert attribution.reattribute(db, ws.id, NOW, 50).reattributed == [ws.id]
    got = credits(store, ws)
    with store.engine.begin() as conn:
        conn.execute(
            t.conversion_credits.delete().where(t.conversion_credits.c.workspace_id == ws.id)
        )
    assert attribution.reattribute(python, ws.id, NOW).reattributed == [ws.id]
    assert [_sans_revision(r) for r in got] == [_sans_revision(r) for r in credits(store, ws)]
    changed = [
        r for r in got if r[:2] not in before or _sans_revision(before[r[:2]]) != _sans_revision(r)
    ]
    assert changed and len(changed) < len(got)
    assert {r[12] for r in changed} == {revision}
    assert all(r[12] == before[r[:2]][12] for r in got if r not in changed)
    assert credits(store, other) == theirs


def _sans_revision(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:12] + row[13:]


def test_a_conversion_committed_during_a_reattribution_is_credited_once(store: Repos) -> None:
    """A conversion inserted while a re-attribution runs, with an id inside its range but not
    committed yet, is neither credited nor touched by it; the jobs' next pass credits it, once,
    exactly as the Python path does."""
    if not is_postgres(store.engine):
        pytest.skip("re-attribution in the database is PostgreSQL's")
    ws = build(store, random.Random(4), 0)
    db = AttributionQueries(store.engine)
    assert attribution.reattribute(db, ws.id, NOW).reattributed == [ws.id]
    attribution.set_settings(db, ws, None, click_window="3d", now_us=NOW)
    cv = t.conversions
    with store.engine.connect() as conn:
        contact = conn.execute(sa.select(cv.c.contact_id).where(cv.c.contact_id.is_not(None))
                               .order_by(cv.c.id).limit(1)).scalar_one()  # fmt: skip

    def conversion(name: str) -> dict[str, Any]:
        return {"public_id": name, "workspace_id": ws.id, "event": "purchase",
                "value_micros": 1_000_000, "currency": "USD", "occurred_us": T0 + 30 * H,
                "received_us": NOW, "source": "api", "dedup_key": name, "contact_id": contact}  # fmt: skip

    with store.engine.connect() as late:
        pending = late.begin()
        late_id = late.execute(cv.insert().values(**conversion("late"))).inserted_primary_key[0]  # type: ignore[index]
        with store.engine.begin() as conn:  # committed, with a higher id: the range covers both
            conn.execute(cv.insert().values(**conversion("after")))
        assert attribution.reattribute(db, ws.id, NOW, 40).reattributed == [ws.id]
        pending.commit()
    mine = credits(store, ws)
    assert late_id not in {r[0] for r in mine}
    attribution.Attributor(db).run_pending(NOW)  # new conversions (and unsettled ones)
    got = credits(store, ws)
    assert len({r[1] for r in got if r[0] == late_id}) in (1, 3)
    python = AttributionQueries(store.engine, in_database=False)
    with store.engine.begin() as conn:
        conn.execute(
            t.conversion_credits.delete().where(t.conversion_credits.c.workspace_id == ws.id)
        )
    assert attribution.reattribute(python, ws.id, NOW).reattributed == [ws.id]
    assert [_sans_revision(r) for r in got] == [_sans_revision(r) for r in credits(store, ws)]
