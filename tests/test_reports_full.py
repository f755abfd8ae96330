"""The full campaign report, recipients, comparison, API and CLI, on SQLite and PostgreSQL.

One hand-built campaign whose every figure is worked out below; see docs/reports.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, ContactInput, Receipt, Workspace
from clicktrail.domain.report import FullReport, Provisional, iso_us, timing_buckets
from clicktrail.services import reports
from clicktrail.services.ports import ClickRecord
from clicktrail.signals import ua_facts
from clicktrail.storage import tables as t
from clicktrail.storage.reports import ReportQueries
from clicktrail.storage.rollup import country_of
from factories import (
    NOW_US,
    PYTHONPATH,
    Repos,
    make_api_key,
    make_campaign,
    make_domain,
    make_workspace,
    message_ids,
    send,
)

T0 = NOW_US + 3_600_000_000  # delivery receipts
S = 1_000_000
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Mobile Safari/537.36"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Safari/537.36"
)
PREVIEW = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"
# Recipients: m0 US, m1 CA, m2 GB, m3 DE (failed), m4 US (no receipt).
PHONES = ["+14155550100", "+14165550123", "+447400123456", "+4915123456789", "+14155550104"]
TEMPLATE = "A https://a.example.com/x B https://b.example.com/y stop https://a.example.com/stop"

HUMAN = Verdict("human", 0, (), "t1")
SUSPECT = Verdict("suspect", 35, ("HDR_NO_SEC_FETCH",), "t1")
PREVIEWED = Verdict("preview", 100, ("UA_PREVIEW_IMESSAGE",), "t1")
SCANNER = Verdict("scanner", 95, ("NET_HOSTING", "FANOUT_IP_60S"), "t1")
PROBE = Verdict("probe", 100, ("METHOD_PROBE",), "t1")


PLAN: list[tuple[int, int, int, str, str | None, Verdict | None]] = [
    # (recipient, link, µs after delivery, method, user agent, verdict)
    (0, 0, 30 * S, "GET", IPHONE, HUMAN),
    (0, 0, 90 * S, "GET", IPHONE, HUMAN),
    (0, 1, 7200 * S + 5 * S, "GET", ANDROID, SUSPECT),
    (0, 2, 300 * S, "GET", IPHONE, HUMAN),  # opt-out
    (0, 1, 3 * 3600 * S, "GET", None, None),  # not classified yet: counted
    (1, 0, 10 * S, "GET", PREVIEW, PREVIEWED),
    (1, 0, 150 * S, "GET", ANDROID, HUMAN),
    (1, 0, 1 * S, "HEAD", ANDROID, PROBE),
    (2, 0, 1 * S, "GET", WINDOWS, SCANNER),
    (2, 2, 1200 * S, "GET", IPHONE, HUMAN),  # opt-out
    (2, 1, -5 * S, "GET", WINDOWS, HUMAN),  # before the receipt
    (4, 1, 100 * S, "GET", IPHONE, HUMAN),  # no receipt
]
PLAN_VERDICTS = [v for *_, v in PLAN]


@dataclass
class Built:
    store: Repos
    queries: ReportQueries
    ws: Workspace
    campaign: Campaign
    other: Campaign  # a second, unsent campaign of the same workspace


def build(store: Repos, tmp_path: Path) -> Built:
    """The hand-built campaign: 5 recipients, links cta / other / optout, 12 requests."""
    ws = make_workspace(store)
    make_domain(store, ws)
    store.contacts.upsert_contacts(
        ws.id,
        [ContactInput(p, f"CRM-{'ABCDE'[i]}", f"N{i}", {}) for i, p in enumerate(PHONES)],
        None,
        NOW_US,
    )
    cp = make_campaign(store, ws, TEMPLATE, slug="spring", link_roles={1: "other", 2: "optout"})
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    ids = message_ids(store, cp)
    store.messages.apply_receipts(
        ws.id,
        [Receipt(ids[i], "delivered", T0) for i in range(3)] + [Receipt(ids[3], "failed", T0)],
        skip_unknown=False,
        source="t",
        now_us=T0,
    )
    found = store.campaigns.find_campaign(ws.id, "spring")
    assert found is not None
    cp = found
    links = [lk.id for lk in cp.links]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.messages.c.id, t.messages.c.contact_id)
            .where(t.messages.c.campaign_id == cp.id)
            .order_by(t.messages.c.id)
        ).all()
    by_phone = {
        store.contacts.find_contact(ws.id, p).id: i  # type: ignore[union-attr]
        for i, p in enumerate(PHONES)
    }
    msg = {by_phone[contact]: (mid, contact) for mid, contact in rows}
    records, verdicts = [], []
    for n, (who, link, after, method, ua, verdict) in enumerate(PLAN):
        mid, contact = msg[who]
        records.append(
            ClickRecord(
                f"k{n}", f"tok{n}", cp.id, links[link], mid, contact, T0 + after, method,
                "203.0.113.9", ua, {},
            )
        )  # fmt: skip
        verdicts.append(verdict)
    classified = [(r, v) for r, v in zip(records, verdicts, strict=True) if v is not None]
    store.clicks.insert_clicks([r for r, _ in classified], [v for _, v in classified])
    store.clicks.insert_clicks([r for r, v in zip(records, verdicts, strict=True) if v is None])
    other = make_campaign(store, ws, "Other https://c.example.com/z", slug="autumn")
    return Built(store, ReportQueries(store.engine, ua_facts=ua_facts), ws, cp, other)


@pytest.fixture
def built(store: Repos, tmp_path: Path) -> Built:
    return build(store, tmp_path)


def full(b: Built) -> FullReport:
    return reports.full_report(b.queries, b.ws, "spring", now_us=T0)


def test_delivery_and_click_counts(built: Built) -> None:
    r = full(built)
    s = r.summary
    assert (s.messages, s.sent, s.delivered, s.failed, s.undelivered, s.queued) == (
        5, 5, 3, 1, 0, 0,
    )  # fmt: skip
    # Every link (opt-out included): the secondary block.
    a = s.all_links
    assert (a.total_clicks, a.unique_clicks, s.requests) == (9, 4, 12)
    assert (a.raw_total_clicks, a.raw_unique_clicks, s.preview_fetches) == (11, 4, 1)
    assert a.ctr == pytest.approx(4 / 3)
    assert a.repeat_click_rate == pytest.approx(9 / 4)
    assert s.by_verdict == {
        "human": 7, "preview": 1, "probe": 1, "scanner": 1, "suspect": 1, "unclassified": 1,
    }  # fmt: skip
    assert s.by_reason == {
        "FANOUT_IP_60S": 1, "HDR_NO_SEC_FETCH": 1, "METHOD_PROBE": 1, "NET_HOSTING": 1,
        "UA_PREVIEW_IMESSAGE": 1,
    }  # fmt: skip
    # The campaign report (GET …/report) says the same.
    assert built.store.reports.campaign_report(built.campaign) == s
    assert reports.campaign_report(built.queries, built.ws, "spring") == s


def test_the_headline_excludes_optout_links_which_are_reported_apart(built: Built) -> None:
    r = full(built)
    e = r.summary  # the headline: engagement links only
    assert (e.total_clicks, e.unique_clicks, e.raw_total_clicks, e.raw_unique_clicks) == (
        7, 4, 9, 4,
    )  # fmt: skip
    assert e.ctr == pytest.approx(4 / 3)
    assert e.repeat_click_rate == pytest.approx(7 / 4)
    assert e.raw_ctr == pytest.approx(4 / 3)
    o = r.summary.optout
    assert (o.links, o.total_clicks, o.unique_clicks, o.raw_total_clicks) == (1, 2, 2, 2)
    assert o.rate == pytest.approx(2 / 3)
    by_role = {lk.role: lk for lk in r.summary.links}
    cta, other, optout = by_role["cta"], by_role["other"], by_role["optout"]
    assert (cta.total_clicks, cta.unique_clicks, cta.requests) == (3, 2, 6)
    assert (cta.raw_total_clicks, cta.raw_unique_clicks, cta.preview_fetches) == (5, 3, 1)
    assert cta.ctr == pytest.approx(2 / 3)
    assert (other.total_clicks, other.unique_clicks, other.requests) == (4, 3, 4)
    assert (other.raw_total_clicks, other.raw_unique_clicks) == (4, 3)
    assert (optout.total_clicks, optout.unique_clicks, optout.requests) == (2, 2, 2)
    # Links are numbered from 1, as in --link-role, the CLI tables and the dashboard.
    assert [(lk.link, lk.role) for lk in r.summary.links] == [
        (1, "cta"),
        (2, "other"),
        (3, "optout"),
    ]


def test_click_timing_since_delivery(built: Built) -> None:
    tm = full(built).timing
    assert (tm.first_clicks, tm.before_delivery, tm.failed_receipt, tm.without_receipt) == (
        2, 1, 0, 1,
    )  # fmt: skip
    # First counted engagement clicks with a receipt: m0 after 30 s, m1 after 150 s.
    assert tm.median_first_click_s == 90.0
    assert len(tm.buckets) == 60 + 3  # minutes, then hours 1, 2 and 3
    minutes = {b.start_s // 60: (b.clicks, b.first_clicks) for b in tm.buckets[:60]}
    assert {k: v for k, v in minutes.items() if v != (0, 0)} == {0: (1, 1), 1: (1, 0), 2: (1, 1)}
    assert [(b.start_s, b.end_s, b.clicks, b.first_clicks) for b in tm.buckets[60:]] == [
        (3600, 7200, 0, 0), (7200, 10800, 1, 0), (10800, 14400, 1, 0),
    ]  # fmt: skip
    assert sum(b.clicks for b in tm.buckets) + tm.before_delivery + tm.without_receipt == 7


def test_clicks_on_failed_messages_are_not_counted_as_without_a_receipt(built: Built) -> None:
    m3 = message_ids(built.store, built.campaign)[3]  # its receipt said "failed"
    with built.store.engine.connect() as conn:
        mid, contact = conn.execute(
            sa.select(t.messages.c.id, t.messages.c.contact_id).where(t.messages.c.public_id == m3)
        ).one()
    link = built.campaign.links[0].id
    record = ClickRecord(
        "kf", "tokf", built.campaign.id, link, mid, contact, T0 + 60 * S, "GET", "203.0.113.9",
        IPHONE, {},
    )  # fmt: skip
    built.store.clicks.insert_clicks([record], [HUMAN])
    tm = full(built).timing
    assert (tm.before_delivery, tm.failed_receipt, tm.without_receipt) == (1, 1, 1)
    counted = sum(b.clicks for b in tm.buckets)
    assert counted + tm.before_delivery + tm.failed_receipt + tm.without_receipt == 8


def test_a_report_says_how_much_is_still_provisional(built: Built) -> None:
    def provisional() -> Provisional:
        return reports.campaign_report(built.queries, built.ws, "spring").provisional

    # Every request of the hand-built campaign has a provisional verdict (or none yet): 7 of
    # them are counted in the headline; the newest came 3 h after delivery.
    p = provisional()
    settle = built.queries.settle_us
    assert (p.final, p.requests, p.counted_clicks) == (False, 12, 7)
    assert p.settles_us == T0 + 3 * 3600 * S + settle
    assert p.settle_seconds == settle // S
    assert p.settles_at is not None and p.settles_at.endswith("Z")
    assert full(built).summary.provisional == p
    # The finalize pass settles them (verdicts unchanged here): only the unclassified one left.
    plan = {f"k{n}": v for n, v in enumerate(PLAN_VERDICTS) if v is not None}
    built.store.clicks.save_verdicts([(cid, v, True) for cid, v in plan.items()])
    p = provisional()
    assert (p.final, p.requests, p.counted_clicks) == (False, 1, 1)
    assert p.settles_us == T0 + 3 * 3600 * S + settle
    built.store.clicks.save_verdicts([("k4", HUMAN, True)])
    p = provisional()
    assert (p.final, p.requests, p.counted_clicks, p.settles_us, p.settles_at) == (
        True, 0, 0, None, None,
    )  # fmt: skip


def test_timing_buckets_close_after_a_week() -> None:
    late = timing_buckets({59 + 500: 2, 0: 1}, {59 + 500: 1}, max_hours=168)
    assert late[-1].start_s == 168 * 3600
    assert (late[-1].end_s, late[-1].clicks, late[-1].first_clicks) == (None, 2, 1)
    assert len(late) == 60 + 168


def test_devices_countries_and_bot_share(built: Built) -> None:
    r = full(built)
    # Counted engagement clicks: 3 iPhone, 2 Android, 1 Windows, 1 without a user agent.
    assert [(x.name, x.count) for x in r.devices] == [
        ("iPhone", 3), ("Samsung SM-S918B", 2), ("unknown", 2),
    ]  # fmt: skip
    assert [(x.name, x.count) for x in r.oses] == [
        ("iOS", 3), ("Android", 2), ("Windows", 1), ("unknown", 1),
    ]  # fmt: skip
    assert [(x.name, x.count) for x in r.browsers] == [
        ("Mobile Safari", 3), ("Chrome Mobile", 2), ("Chrome", 1), ("unknown", 1),
    ]  # fmt: skip
    assert r.devices[0].share == pytest.approx(3 / 7)
    assert [(c.country, c.recipients, c.delivered, c.unique_clicks, c.ctr) for c in r.countries] == [
        ("US", 2, 1, 2, 2.0), ("CA", 1, 1, 1, 1.0), ("GB", 1, 1, 1, 1.0), ("DE", 1, 0, 0, None),
    ]  # fmt: skip
    b = r.bots
    # One denominator: the 12 requests (11 GETs and a HEAD probe); 9 counted clicks.
    assert (b.requests, b.raw_clicks, b.counted_clicks, b.not_counted) == (12, 11, 9, 3)
    assert b.share == pytest.approx(3 / 12)
    assert sum(x.count for x in b.by_verdict) == b.requests
    assert {x.name: x.share for x in b.by_verdict}["probe"] == pytest.approx(1 / 12)
    assert b.by_reason[0].share == pytest.approx(1 / 12)


def test_country_rollup_follows_status_changes(built: Built) -> None:
    assert full(built).countries[0].delivered == 1
    m4 = message_ids(built.store, built.campaign)[4]
    built.store.messages.apply_receipts(
        built.ws.id, [Receipt(m4, "delivered", T0)], skip_unknown=False, source="t", now_us=T0
    )
    us = full(built).countries[0]
    assert (us.country, us.recipients, us.delivered) == ("US", 2, 2)


def test_country_of_tells_shared_calling_codes_apart() -> None:
    assert [country_of(p) for p in ("+14155550100", "+14165550123", "+447911123456")] == [
        "US", "CA", "GG",
    ]  # fmt: skip
    assert country_of("+447400123456") == "GB"
    assert country_of("not a phone") == "ZZ"


def test_recipients_with_search_and_cursor_paging(built: Built) -> None:
    def page(**kw: Any) -> Any:
        args: dict[str, Any] = {"search": None, "cursor": None, "limit": 2}
        args.update(kw)
        return reports.recipients_page(built.queries, built.ws, "spring", **args)

    first = page()
    assert first.total == 4
    assert [x.phone for x in first.items] == PHONES[:2]
    m0 = first.items[0]
    assert (m0.external_id, m0.country, m0.clicks) == ("CRM-A", "US", 4)
    assert (m0.first_click_us, m0.last_click_us) == (T0 + 30 * S, T0 + 3 * 3600 * S)
    assert m0.device is None  # the last click had no user agent
    m1 = first.items[1]
    assert (m1.clicks, m1.device, m1.os, m1.browser) == (
        1,
        "Samsung SM-S918B",
        "Android",
        "Chrome Mobile",
    )
    assert first.next_cursor is not None
    second = page(cursor=first.next_cursor)
    assert [x.phone for x in second.items] == [PHONES[2], PHONES[4]]
    assert second.next_cursor is None
    assert second.items[0].first_click_us == T0 - 5 * S
    assert [x.phone for x in page(search="5550123").items] == [PHONES[1]]
    assert [x.phone for x in page(search="crm-e").items] == [PHONES[4]]  # any case
    assert page(search="crm-d").total == 0  # m3 never clicked
    assert page(search="%").total == 0  # LIKE wildcards are literal
    assert full(built).recipients.items[0].as_dict()["first_click_at"].endswith("Z")
    with pytest.raises(InvalidInput) as bad:
        page(cursor="nope")
    assert bad.value.field == "cursor"
    with pytest.raises(InvalidInput):
        page(limit=0)


def test_compare_campaigns_over_a_date_range(built: Built) -> None:
    rows = reports.compare_campaigns(built.queries, built.ws, since_us=None, until_us=None)
    assert {r.slug for r in rows} == {"spring", "autumn"}
    (spring,) = reports.compare_campaigns(
        built.queries, built.ws, since_us=NOW_US - 3600 * S, until_us=NOW_US + 86_400 * S
    )
    assert (spring.slug, spring.delivered, spring.total_clicks, spring.unique_clicks) == (
        "spring", 3, 7, 4,
    )  # fmt: skip
    assert spring.ctr == pytest.approx(4 / 3)
    assert spring.median_first_click_s == 90.0
    assert (
        reports.compare_campaigns(built.queries, built.ws, since_us=T0 + 86_400 * S, until_us=None)
        == []
    )
    with pytest.raises(InvalidInput):
        reports.compare_campaigns(built.queries, built.ws, since_us=2, until_us=1)


def test_empty_campaign_and_unknown_campaign(built: Built) -> None:
    r = reports.full_report(built.queries, built.ws, "autumn", now_us=T0)
    assert (r.summary.messages, r.summary.total_clicks, r.summary.ctr) == (0, 0, None)
    assert r.summary.provisional.final
    assert r.timing.median_first_click_s is None
    assert (r.countries, r.devices, r.recipients.items) == ([], [], [])
    assert json.loads(json.dumps(r.as_dict()))["optout"]["links"] == 0
    with pytest.raises(NotFound):
        reports.full_report(built.queries, built.ws, "nope", now_us=T0)
    stranger = make_workspace(built.store)
    with pytest.raises(NotFound):
        reports.full_report(built.queries, stranger, "spring", now_us=T0)


# -- API and CLI --------------------------------------------------------------------------------


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Container, Built, str]]:
    settings = load_settings(
        env={
            "CLICKTRAIL_DATABASE_URL": database_url,
            "CLICKTRAIL_DATA_DIR": str(tmp_path),
            "CLICKTRAIL_BOT_SETTLE_SECONDS": "600",
        }
    )
    container = Container(settings)
    b = build(Repos.on(container.engine), tmp_path)
    yield container, b, make_api_key(Repos.on(container.engine), b.ws)
    container.dispose()


def call(container: Container, *requests: tuple[str, str]) -> list[httpx.Response]:
    """GET each (path, key) in the app, lifespan around."""
    app = container.web_app()

    async def main() -> list[httpx.Response]:
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
        )
        await to_app.put({"type": "lifespan.startup"})
        assert (await from_app.get())["type"] == "lifespan.startup.complete"
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
                return [
                    await c.get(path, headers={"Authorization": f"Bearer {key}"})
                    for path, key in requests
                ]
        finally:
            await to_app.put({"type": "lifespan.shutdown"})
            assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
            await task

    return asyncio.run(main())


def test_api_endpoints_and_workspace_isolation(served: tuple[Container, Built, str]) -> None:
    container, b, key = served
    stranger = make_workspace(Repos.on(container.engine))
    other_key = make_api_key(Repos.on(container.engine), stranger)
    rep, classic, p1, compare, theirs, their_recipients, bad_cursor, bad_since = call(
        container,
        ("/v1/campaigns/spring/report/full", key),
        ("/v1/campaigns/spring/report", key),
        ("/v1/campaigns/spring/recipients?limit=2&search=", key),
        ("/v1/reports/compare?since=2026-05-01&until=2026-06-30T00:00:00Z", key),
        ("/v1/campaigns/spring/report/full", other_key),
        (f"/v1/campaigns/{b.campaign.public_id}/recipients", other_key),
        ("/v1/campaigns/spring/recipients?cursor=zzz", key),
        ("/v1/reports/compare?since=yesterday", key),
    )
    assert rep.status_code == 200, rep.text
    body = rep.json()
    assert (body["total_clicks"], body["all_links"]["total_clicks"]) == (7, 9)
    assert "engagement" not in body
    assert body["timing"]["median_first_click_s"] == 90.0
    assert {k: v for k, v in body.items() if k in classic.json()} == classic.json()
    # The headline is the same object in the campaign report and the full report: engagement
    # links only, "all links" apart, links numbered from 1.
    top = classic.json()
    assert (top["total_clicks"], top["unique_clicks"], top["ctr"]) == (7, 4, pytest.approx(4 / 3))
    assert (top["all_links"]["total_clicks"], top["optout"]["total_clicks"]) == (9, 2)
    assert [x["link"] for x in top["links"]] == [1, 2, 3]
    assert "index" not in top["links"][0]
    # Not final yet, settling with the server's settle window.
    assert top["provisional"] == {
        "final": False, "requests": 12, "counted_clicks": 7, "settle_seconds": 600,
        "settles_us": T0 + 3 * 3600 * S + 600 * S,
        "settles_at": iso_us(T0 + 3 * 3600 * S + 600 * S),
    }  # fmt: skip
    assert p1.status_code == 200
    page = p1.json()
    assert (page["total"], len(page["items"])) == (4, 2)
    (p2,) = call(
        container, (f"/v1/campaigns/spring/recipients?limit=2&cursor={page['next_cursor']}", key)
    )
    assert [x["phone"] for x in p2.json()["items"]] == [PHONES[2], PHONES[4]]
    assert [x["slug"] for x in compare.json()["items"]] == ["spring"]
    for r in (theirs, their_recipients):
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
    assert bad_cursor.status_code in (400, 422)
    assert bad_cursor.json()["field"] == "cursor"
    assert bad_since.json()["field"] == "since"


def test_cli_json_matches_the_api(
    served: tuple[Container, Built, str], database_url: str, tmp_path: Path
) -> None:
    container, _b, key = served
    env = {
        "PATH": os.environ.get("PATH", ""),
        **PYTHONPATH,
        "HOME": str(tmp_path),
        "CLICKTRAIL_DATABASE_URL": database_url,
        "CLICKTRAIL_DATA_DIR": str(tmp_path),
        "CLICKTRAIL_BOT_SETTLE_SECONDS": "600",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    ws = ["--workspace", _b.ws.slug]
    exe = str(Path(sys.executable).with_name("clicktrail"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    out = cli("report", "spring", *ws, "--json")
    assert out.returncode == 0, out.stderr
    (api,) = call(container, ("/v1/campaigns/spring/report/full", key))
    from_cli, from_api = json.loads(out.stdout), api.json()
    from_cli.pop("generated_at")
    from_api.pop("generated_at")
    assert from_cli == from_api
    cmp = cli("compare", *ws, "--since", "2026-05-01", "--json")
    assert cmp.returncode == 0, cmp.stderr
    (api_cmp,) = call(container, ("/v1/reports/compare?since=2026-05-01", key))
    assert json.loads(cmp.stdout) == api_cmp.json()
    table = cli("report", "spring", *ws)
    assert table.returncode == 0, table.stderr
    assert "median time to first click" in table.stdout and "90 s" in table.stdout
    assert "all links: clicks / unique / CTR" in table.stdout
    # (the server's jobs above may have classified the request that had no verdict yet)
    assert re.search(
        r"numbers: provisional: [67] counted clicks \(12 requests\) may still be filtered",
        " ".join(table.stdout.split()),
    )
    assert iso_us(T0 + 3 * 3600 * S + 600 * S) in table.stdout
    assert "opt-out links apart" in table.stdout
