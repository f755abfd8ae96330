"""Segments through storage, on SQLite and PostgreSQL: the membership of every filter kind and of
the built-in segments on a hand-built workspace, sizes (counted both ways) equal to the members
listed, opted-out contacts in no sendable segment, static members, a campaign sent to a
segment, and bad filters named."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord
from clicktrail.domain.engagement import DAY_US
from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.models import Campaign, ContactInput, Workspace
from clicktrail.domain.segments import parse_filter
from clicktrail.services import campaigns, engagement, segments
from clicktrail.services.conversions import record_conversions
from clicktrail.services.optouts import ManualChange, set_opt_outs
from clicktrail.services.sending import send_campaign
from clicktrail.sms.outbox import OutboxProvider
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.engagement import EngagementQueries
from clicktrail.storage.holdouts import HoldoutQueries
from clicktrail.storage.optouts import OptOutQueries
from clicktrail.storage.segments import SegmentQueries
from factories import NOW_US, Repos, fixed_clock, make_campaign, make_domain, make_workspace, send

NOW = NOW_US
HUMAN = Verdict("human", 5, ())
PREVIEW = Verdict("preview", 80, ("TEST",))
UK = "+442071838750"
SEQ = itertools.count(1)


@dataclass(frozen=True)
class SegRepos:
    segments: SegmentQueries
    engagement: EngagementQueries
    campaigns: CampaignQueries


@dataclass
class World:
    store: Repos
    repos: SegRepos
    ws: Workspace
    a: Campaign
    b: Campaign
    ids: dict[str, int]  # "c0" … "c7" -> contact id

    def members(self, ref_or_filter: str | dict[str, Any]) -> set[str]:
        """The names of the members, listed, after checking the size says as many."""
        if isinstance(ref_or_filter, str):
            seg = segments.get_segment(self.repos, self.ws, ref_or_filter, NOW)
        else:
            seg = segments.create_segment(
                self.repos, self.ws, name=f"filter {next(SEQ)}",
                filter=ref_or_filter, kind="filter", now_us=NOW,
            )  # fmt: skip
        q = segments.query_for(self.repos, seg, NOW)
        listed = self.repos.segments.member_page(q, 0, 1000)
        names = {n for n, i in self.ids.items() for c in listed if c.id == i}
        assert self.repos.segments.segment_size(q) == len(listed), ref_or_filter
        return names


def _world(store: Repos, tmp_path: Path, ws: Workspace | None = None) -> World:
    """The hand-built workspace (`ws`, else a new one with a short domain), scored at NOW."""
    if ws is None:
        ws = make_workspace(store)
        make_domain(store, ws)
    people = [
        ContactInput(f"+1415555{i:04d}", f"ext-{i}", f"N{i}",
                     {"plan": "gold" if i % 2 == 0 else "silver"})
        for i in range(7)
    ] + [ContactInput(UK, "ext-7", "N7", {"plan": "silver", "city": "London"})]  # fmt: skip
    store.contacts.upsert_contacts(ws.id, people, None, NOW)
    ids = {}
    for i, p in enumerate(people):
        found = store.contacts.find_contact(ws.id, p.phone)
        assert found is not None
        ids[f"c{i}"] = found.id
    a = make_campaign(store, ws, "A https://shop.example.com/a", slug="camp-a")
    b = make_campaign(store, ws, "B https://shop.example.com/b", slug="camp-b")
    send(store, ws, a, tmp_path / "a.jsonl")
    send(store, ws, b, tmp_path / "b.jsonl")
    msgs = {}
    with store.engine.connect() as conn:
        for mid, cid, cp in conn.execute(
            sa.select(t.messages.c.id, t.messages.c.contact_id, t.messages.c.campaign_id)
        ):
            msgs[(cid, cp)] = mid
    clicks = [  # (contact, campaign, days ago, verdict)
        ("c0", a, 0, HUMAN), ("c1", a, 45, HUMAN), ("c2", b, 100, HUMAN), ("c5", a, 0, HUMAN),
        ("c6", a, 0, PREVIEW),
    ]  # fmt: skip
    recs, verdicts = [], []
    for n, (who, cp, days, v) in enumerate(clicks):
        cid = ids[who]
        recs.append(ClickRecord(f"ck{n}", f"tk{n}", cp.id, cp.links[0].id, msgs[(cid, cp.id)],
                                cid, NOW - days * DAY_US, "GET", "203.0.113.7", "Mozilla/5.0",
                                {}))  # fmt: skip
        verdicts.append(v)
    store.clicks.insert_clicks(recs, verdicts)
    (ok,) = record_conversions(
        ConversionQueries(store.engine), ws,
        [{"event": "signup", "contact": {"external_id": "ext-3"}, "occurred_at": str(NOW // 10**6)}],
        source="api", now_us=NOW,
    )  # fmt: skip
    assert ok.outcome == "accepted", ok
    set_opt_outs(
        store.contacts, OptOutQueries(store.engine), ws, [ManualChange("ext-5", True, None, None)],
        where=["x"], source="test", now_us=NOW,
    )  # fmt: skip
    eng = EngagementQueries(store.engine)
    engagement.refresh_dirty(eng, NOW)
    return World(store, SegRepos(SegmentQueries(store.engine), eng, store.campaigns), ws, a, b, ids)


@pytest.fixture
def world(store: Repos, tmp_path: Path) -> World:
    return _world(store, tmp_path)


def test_built_in_segments(world: World) -> None:
    w = world
    assert w.members("engaged") == {"c0", "c3"}  # a click today (10), a conversion today (30)
    assert w.members("at-risk") == {"c1"}  # 10 · 2^-1.5 = 3.5
    assert w.members("unengaged") == {"c2", "c4", "c6", "c7"}  # 0.99, 0, a preview (1), 0
    assert w.members("never-clicked") == {"c3", "c4", "c6", "c7"}
    listed = segments.sizes(w.repos, w.ws, NOW)
    assert [(x.segment.slug, x.size) for x in listed] == [
        ("at-risk", 1), ("engaged", 2), ("never-clicked", 4), ("unengaged", 4),
    ]  # fmt: skip
    assert all(x.segment.builtin and x.segment.sendable for x in listed)


def test_each_filter_kind(world: World) -> None:
    w = world
    assert w.members({"clicked_campaign": "camp-a"}) == {"c0", "c1"}  # c5 opted out, c6 a preview
    assert w.members({"clicked_campaign": w.b.public_id}) == {"c2"}
    assert w.members({"no_click_days": 30}) == {"c1", "c2", "c3", "c4", "c6", "c7"}
    assert w.members({"no_click_days": 50}) == {"c2", "c3", "c4", "c6", "c7"}
    assert w.members({"converted": True}) == {"c3"}
    assert w.members({"converted": False}) == {"c0", "c1", "c2", "c4", "c6", "c7"}
    assert w.members({"clicked": True}) == {"c0", "c1", "c2"}
    assert w.members({"country": ["GB"]}) == {"c7"}
    assert w.members({"country": "us"}) == {"c0", "c1", "c2", "c3", "c4", "c6"}
    assert w.members({"attributes": {"plan": "gold"}}) == {"c0", "c2", "c4", "c6"}
    assert w.members({"attributes": {"plan": ["gold", "silver"], "city": "London"}}) == {"c7"}
    assert w.members({"score_min": 3, "score_below": 20}) == {"c0", "c1"}
    assert w.members({"score_min": 0.5, "score_below": 1.0}) == {"c2"}  # 0.99
    assert w.members({"band": "engaged", "attributes": {"plan": "silver"}}) == {"c3"}
    assert w.members({"band": "unengaged", "country": ["US"]}) == {"c2", "c4", "c6"}
    # An attribute with a condition a contact without a score row meets: one pass, outer join.
    assert w.members({"no_click_days": 30, "attributes": {"plan": "gold"}}) == {"c2", "c4", "c6"}
    assert w.members({"band": "unengaged", "attributes": {"plan": "silver"}}) == {"c7"}
    assert w.members({"converted": False, "attributes": {"plan": "silver"}}) == {"c1", "c7"}
    assert w.members({}) == {"c0", "c1", "c2", "c3", "c4", "c6", "c7"}


def test_opted_out_contacts_are_in_no_sendable_segment(world: World) -> None:
    w = world
    # c5 clicked today: engaged by score, but opted out.
    for ref in ("engaged", "at-risk", "unengaged", "never-clicked"):
        assert "c5" not in w.members(ref)
    assert w.members({"opted_in": False}) == {"c5"}
    out = segments.create_segment(
        w.repos, w.ws, name="Opted out", filter={"opted_in": False}, kind="filter", now_us=NOW
    )
    assert not out.sendable
    with pytest.raises(InvalidInput) as e:
        segments.campaign_audience(w.repos, w.ws, out.slug, NOW)
    assert e.value.field == "segment"


def test_static_segment_members(world: World) -> None:
    w = world
    seg = segments.create_segment(w.repos, w.ws, name="VIP", kind="static", now_us=NOW)
    done = segments.change_members(w.repos, w.ws, "vip", add=["ext-0", "ext-5", UK], now_us=NOW)
    assert (done.added, done.removed) == (3, 0)
    assert w.members("vip") == {"c0", "c7"}  # c5 is a member, opted out: not in the segment
    again = segments.change_members(
        w.repos, w.ws, seg.public_id, add=["ext-0"], remove=["ext-7"], now_us=NOW
    )
    assert (again.added, again.removed) == (0, 1)
    assert w.members("vip") == {"c0"}
    with pytest.raises(InvalidInput) as e:  # all or nothing, each unknown contact named
        segments.change_members(w.repos, w.ws, "vip", add=["ext-1", "nobody", "x"], now_us=NOW)
    assert e.value.field == "add/1" and len(e.value.problems) == 2
    assert w.members("vip") == {"c0"}
    with pytest.raises(InvalidInput):
        segments.change_members(w.repos, w.ws, "engaged", add=["ext-1"], now_us=NOW)
    with pytest.raises(Conflict):
        segments.delete_segment(w.repos, w.ws, "engaged", NOW)
    segments.delete_segment(w.repos, w.ws, "vip", NOW)
    with pytest.raises(NotFound):
        segments.get_segment(w.repos, w.ws, "vip", NOW)


def test_a_campaign_sent_to_a_segment(world: World, tmp_path: Path) -> None:
    w = world
    seg = segments.campaign_audience(w.repos, w.ws, "engaged", NOW)
    cp = campaigns.create_campaign(
        w.store, w.ws, name="Winback", template="Hi {first_name} https://shop.example.com/w",
        segment=seg, now_us=NOW,
    )  # fmt: skip
    assert cp.segment_id == seg.id
    with pytest.raises(Conflict):  # the audience of a campaign not sent yet
        segments.delete_segment(w.repos, w.ws, "engaged", NOW)
    outbox = tmp_path / "winback.jsonl"
    summary = send_campaign(
        w.store, w.ws, cp, OutboxProvider(outbox), clock=fixed_clock(),
        holdouts=HoldoutQueries(w.store.engine),
        audiences=lambda c, now: segments.audience_query(w.repos, c, NOW),
    )  # fmt: skip
    sent = [orjson.loads(line)["to"] for line in outbox.read_text().splitlines()]
    assert sorted(sent) == ["+14155550000", "+14155550003"]  # c0, c3; never c5 (opted out)
    assert summary.sent == 2
    with pytest.raises(InvalidInput) as e:
        campaigns.create_campaign(
            w.store, w.ws, name="Both", template="x https://a.example.com", segment=seg,
            list_name="vip", now_us=NOW,
        )  # fmt: skip
    assert e.value.field == "segment"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"band": "hot"}, "/filter/band"),
        ({"no_click_days": 0}, "/filter/no_click_days"),
        ({"no_click_days": "7"}, "/filter/no_click_days"),
        ({"score_min": 120}, "/filter/score_min"),
        ({"score_min": 5, "score_below": 5}, "/filter/score_below"),
        ({"band": "engaged", "score_min": 1}, "/filter/band"),
        ({"country": ["USA"]}, "/filter/country"),
        ({"attributes": {"plan": 3}}, "/filter/attributes/plan"),
        ({"converted": "yes"}, "/filter/converted"),
        ({"colour": "red"}, "/filter/colour"),
    ],
)
def test_bad_filters_are_named(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_filter(data)
    assert e.value.field == field, e.value.message


def test_unknown_campaign_in_a_filter(world: World) -> None:
    with pytest.raises(InvalidInput) as e:
        segments.create_segment(
            world.repos, world.ws, name="Nope", filter={"clicked_campaign": "nope"},
            kind="filter", now_us=NOW,
        )  # fmt: skip
    assert e.value.field == "/filter/clicked_campaign"
    with pytest.raises(InvalidInput) as e:
        segments.create_segment(world.repos, world.ws, name="Engaged", kind="filter",
                                slug="engaged", now_us=NOW)  # fmt: skip
    assert e.value.field == "slug"
