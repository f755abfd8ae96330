"""Bot verdicts through storage: provisional at insert, final after settling, re-classification,
and filtered vs raw report counts — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import Container, SignalsClassifier
from clicktrail.config import load_settings
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.models import Receipt
from clicktrail.services import bots, clicks
from clicktrail.services.ports import ClickRecord
from clicktrail.storage.inbox import InboxWriter
from clicktrail.storage.resolver import TokenResolver
from factories import (
    NOW_US,
    PYTHONPATH,
    Repos,
    make_api_key,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    send,
    tokens_of,
)
from inprocess_api import Api, api, ok, problem

__all__ = ["api"]  # the fixture

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
SAFARI_HEADERS = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "sec-fetch-site": "none",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "_http": "1.1",
}
S = 1_000_000  # µs per second
DELIVERED = NOW_US


def _world(store: Repos, engine: sa.Engine, tmp_path: Path, n: int = 8) -> list[list[Any]]:
    """A campaign of `n` recipients with two links, all delivered at DELIVERED; returns the
    resolved targets per recipient: [[link0, link1], ...]."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, n)
    cp = make_campaign(store, ws, "Hi https://shop.example.com/a and https://shop.example.com/b")
    send(store, ws, cp, tmp_path / "o.jsonl")
    ids = message_ids(store, cp)
    store.messages.apply_receipts(
        ws.id, [Receipt(i, "delivered", DELIVERED) for i in ids], skip_unknown=False,
        source="test", now_us=NOW_US,
    )  # fmt: skip
    resolver = TokenResolver(engine)
    try:
        toks = tokens_of(store, cp)
        targets = [resolver.resolve(t) for t, _, _ in toks]
    finally:
        resolver.close()
    by_message: dict[int, list[Any]] = {}
    for t in targets:
        assert t is not None
        by_message.setdefault(t.message_id, []).append(t)
    return [sorted(v, key=lambda x: x.link_id) for _, v in sorted(by_message.items())]


def _rec(cid: str, target: Any, at_us: int, ua: str = IPHONE, ip: str = "172.56.1.1",
         headers: dict[str, str] | None = None, method: str = "GET") -> ClickRecord:  # fmt: skip
    return ClickRecord(
        cid, "tok", target.campaign_id, target.link_id, target.message_id, target.contact_id,
        at_us, method, ip, ua, dict(SAFARI_HEADERS if headers is None else headers),
    )  # fmt: skip


def _writer(store: Repos) -> Any:
    """Store requests as the click log does, then give them verdicts as the server's job does."""
    classify = clicks.ClassifyNew(store.clicks, SignalsClassifier())

    def write(records: list[ClickRecord]) -> None:
        store.clicks.insert_clicks(records)
        classify()

    return write


def _verdicts(engine: sa.Engine) -> dict[str, tuple[str, bool]]:
    with engine.connect() as conn:
        return {
            r[0]: (r[1], bool(r[2]))
            for r in conn.execute(sa.text("SELECT click_id, verdict, final FROM clicks"))
        }


def test_each_click_is_stored_with_a_provisional_verdict(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    people = _world(store, engine, tmp_path)
    write = _writer(store)
    write([
        _rec("person", people[0][0], DELIVERED + 300 * S),
        _rec("imessage", people[1][0], DELIVERED + 1 * S,
             ua="Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
             headers={"accept": "*/*"}),
        _rec("early", people[2][0], DELIVERED - 5 * S),
        _rec("head", people[3][0], DELIVERED + 60 * S, method="HEAD"),
    ])  # fmt: skip
    v = _verdicts(engine)
    assert v["person"] == ("human", False)
    assert v["imessage"][0] == "preview"
    assert v["early"][0] == "automation"  # before the delivery receipt
    assert v["head"][0] == "probe"
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.text("SELECT reasons, classifier_version FROM clicks WHERE click_id = 'early'")
        ).one()
    assert "DT_BEFORE_DELIVERY" in str(reasons[0])
    assert reasons[1]


def test_settled_requests_get_final_verdicts_with_behaviour(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    people = _world(store, engine, tmp_path)
    write = _writer(store)
    t0 = DELIVERED + 600 * S
    # Recipient 0: both links within a second (a scanner). Recipient 1: a normal tap.
    write([
        _rec("a0", people[0][0], t0, ip="172.56.9.9"),
        _rec("a1", people[0][1], t0 + 300_000, ip="172.56.9.9"),
        _rec("b0", people[1][0], t0 + 40 * S, ip="172.57.1.1"),
    ])  # fmt: skip
    assert {k: v[0] for k, v in _verdicts(engine).items()} == {
        "a0": "human", "a1": "human", "b0": "human",
    }  # fmt: skip
    # Not settled yet: nothing becomes final.
    assert bots.finalize_settled(store.clicks, t0 + 60 * S, settle_us=900 * S).finalized == 0
    done = bots.finalize_settled(store.clicks, t0 + 1000 * S, settle_us=900 * S)
    assert done.finalized == 3
    v = _verdicts(engine)
    assert v["a0"] == ("scanner", True)
    assert v["a1"] == ("scanner", True)
    assert v["b0"] == ("human", True)
    report = store.reports.campaign_report(
        store.campaigns.list_campaigns(store.workspaces.list_workspaces()[0].id)[0]
    )
    assert (report.total_clicks, report.unique_clicks) == (1, 1)
    assert (report.raw_total_clicks, report.raw_unique_clicks) == (3, 2)
    assert report.by_reason["ALL_LINKS_2S"] == 2


class _Strict:
    """A classifier whose rules changed: every GET is now a scanner."""

    def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
        return None

    def classify(self, request: Any) -> Verdict:
        if request.method != "GET":
            return Verdict("probe", 100, ("METHOD_PROBE",), "2")
        return Verdict("scanner", 90, ("NEW_RULE",), "2")


def test_reclassify_rewrites_verdicts_not_raw_signals(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    people = _world(store, engine, tmp_path)
    write = _writer(store)
    write([_rec(f"c{i}", people[i][0], DELIVERED + (100 + i * 90) * S, ip=f"172.{56 + i}.1.1")
           for i in range(4)])  # fmt: skip
    before = store.reports.campaign_report(
        store.campaigns.list_campaigns(store.workspaces.list_workspaces()[0].id)[0]
    )
    assert before.total_clicks == 4
    with engine.connect() as conn:
        raw_before = conn.execute(
            sa.text("SELECT click_id, ip, user_agent, headers FROM clicks ORDER BY click_id")
        ).all()
    result = bots.reclassify(store.clicks, _Strict(), DELIVERED + 10_000 * S, settle_us=900 * S)
    assert (result.requests, result.verdict_changes, result.finalized) == (4, 4, 4)
    after = store.reports.campaign_report(
        store.campaigns.list_campaigns(store.workspaces.list_workspaces()[0].id)[0]
    )
    assert (after.total_clicks, after.raw_total_clicks) == (0, 4)
    assert after.by_verdict == {"scanner": 4}
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT click_id, ip, user_agent, headers FROM clicks ORDER BY click_id")
            ).all()
            == raw_before
        )
        versions = set(conn.execute(sa.text("SELECT classifier_version FROM clicks")).scalars())
    assert versions == {"2"}
    # Only one campaign or a time range can be re-classified too.
    assert bots.reclassify(store.clicks, _Strict(), DELIVERED, campaign_id=-1).requests == 0
    assert (
        bots.reclassify(store.clicks, _Strict(), DELIVERED, since_us=DELIVERED + 250 * S).requests
        == 2
    )


def test_an_address_early_in_several_campaigns_gets_listed(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 2)
    targets = []
    for n in range(4):
        cp = make_campaign(store, ws, "Hi https://shop.example.com/a", name=f"C{n}")
        send(store, ws, cp, tmp_path / f"o{n}.jsonl")
        store.messages.apply_receipts(
            ws.id, [Receipt(i, "delivered", DELIVERED) for i in message_ids(store, cp)],
            skip_unknown=False, source="test", now_us=NOW_US,
        )  # fmt: skip
        resolver = TokenResolver(engine)
        try:
            targets.append([resolver.resolve(t) for t, _, _ in tokens_of(store, cp)])
        finally:
            resolver.close()
    scanner_ip, person_ip = "198.51.100.77", "172.58.1.1"
    classifier = SignalsClassifier(
        listed=lambda: bots.listed_entities(
            store.clicks, DELIVERED + 10_000 * S, days=30, min_campaigns=3
        ),
        listed_ttl=0,
    )
    classify = clicks.ClassifyNew(store.clicks, classifier)
    # Campaigns 0-2: the scanner fetches within half a second of delivery.
    store.clicks.insert_clicks(
        [_rec(f"early{n}", targets[n][0], DELIVERED + S // 2, ip=scanner_ip) for n in range(3)]
    )
    classify()
    bots.finalize_settled(store.clicks, DELIVERED + 10_000 * S, settle_us=900 * S)
    assert bots.listed_entities(store.clicks, DELIVERED + 10_000 * S, days=30, min_campaigns=3) == {
        f"ip:{scanner_ip}"
    }
    # Campaign 3: the same address, now with a person's timing and headers, is still caught;
    # another address doing the same is a person.
    store.clicks.insert_clicks(
        [
            _rec("later", targets[3][0], DELIVERED + 600 * S, ip=scanner_ip),
            _rec("person", targets[3][1], DELIVERED + 600 * S, ip=person_ip),
        ]
    )
    classify()
    v = _verdicts(engine)
    assert v["person"][0] == "human"
    assert v["later"][0] not in ("human", "suspect")
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.text("SELECT reasons FROM clicks WHERE click_id = 'later'")
        ).scalar_one()
    assert "NET_LISTED" in str(reasons)
    # Only two campaigns' worth of sightings would not list it.
    assert (
        bots.listed_entities(store.clicks, DELIVERED + 10_000 * S, days=30, min_campaigns=4)
        == set()
    )


# -- the online pipeline and a one-pass re-classification agree (issue 14) ----------------------

ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Mobile Safari/537.36"
)


def _stream(rng: random.Random, people: list[list[Any]], t0: int) -> list[ClickRecord]:
    """A campaign's requests over 20 minutes: people tapping, addresses fanning out across
    recipients, link checkers hitting every link of a message, the same link hit by several
    user agents within seconds."""
    recs: list[ClickRecord] = []
    span = 1200 * S

    def add(target: Any, at: int, ip: str, ua: str = IPHONE) -> None:
        recs.append(_rec(f"r{len(recs)}", target, at, ua=ua, ip=ip))

    for i in range(rng.randint(8, 20)):  # people, from their own addresses
        add(rng.choice(rng.choice(people)), t0 + rng.randrange(span), f"172.56.{i}.{rng.randint(1, 254)}")  # fmt: skip
    for s in range(rng.randint(1, 3)):  # one address reaching many recipients within ~a minute
        start, reach = t0 + rng.randrange(span), len(people) if s == 0 else rng.randint(3, 9)
        for links in rng.sample(people, reach):
            add(rng.choice(links), start + rng.randrange(90 * S), f"198.51.100.{s + 1}")
    for _ in range(rng.randint(0, 3)):  # a link checker: every link of a message within a second
        links, at = rng.choice(people), t0 + rng.randrange(span)
        for link in links:
            add(link, at + rng.randrange(S), f"203.0.113.{rng.randint(1, 254)}")
    for _ in range(rng.randint(0, 3)):  # the same link, another user agent, seconds later
        link, at = rng.choice(rng.choice(people)), t0 + rng.randrange(span)
        add(link, at, "172.58.0.1")
        add(link, at + rng.randrange(4 * S), "172.58.0.2", ua=ANDROID)
    return sorted(recs, key=lambda r: r.at_us)


def _stored(engine: sa.Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        return {
            r[0]: (r[1], str(r[2]), r[3], bool(r[4]))
            for r in conn.execute(
                sa.text("SELECT click_id, verdict, reasons, score, final FROM clicks")
            )
        }


@pytest.mark.parametrize("seed", range(6))
def test_online_verdicts_do_not_depend_on_when_finalization_ran(
    store: Repos, engine: sa.Engine, tmp_path: Path, seed: int
) -> None:
    """Replays a generated stream through the real pipeline (click inbox, provisional job,
    settle-window passes at random times with random batch sizes), then re-classifies in one
    pass: every stored verdict must be the same."""
    rng = random.Random(seed)
    people = _world(store, engine, tmp_path, n=9)
    t0 = DELIVERED + 60 * S
    records = _stream(rng, people, t0)
    classifier = SignalsClassifier()
    inbox, classify = InboxWriter(engine), clicks.ClassifyNew(store.clicks, classifier)
    settle = rng.choice([120, 300, 900]) * S
    end = records[-1].at_us + settle + 3600 * S
    passes = [*sorted(rng.randrange(t0, records[-1].at_us + settle) for _ in range(12)), end]
    sent = 0
    try:
        for now in passes:
            arrived = [r for r in records[sent:] if r.at_us <= now]
            if arrived:
                inbox([orjson.dumps(r, default=tuple) for r in arrived])
                sent += len(arrived)
            classify()
            bots.finalize_settled(
                store.clicks,
                now,
                settle_us=settle,
                limit=rng.randint(1, 6),
                ip_kind=classifier.ip_kind,
            )
    finally:
        inbox.close()
    online = _stored(engine)
    assert len(online) == len(records)
    assert all(final for *_, final in online.values())
    assert any("FANOUT_IP_60S" in reasons for _, reasons, _, _ in online.values())
    bots.reclassify(store.clicks, classifier, end, settle_us=settle)
    assert _stored(engine) == online


def test_finalize_a_campaign_now_and_what_is_still_pending(
    store: Repos, engine: sa.Engine, tmp_path: Path, database_url: str
) -> None:
    """`bots finalize CAMPAIGN`: final verdicts at once (behaviour included, the inbox first),
    and `pending_verdicts` says what is still provisional and when it settles."""
    people = _world(store, engine, tmp_path)
    ws = store.workspaces.list_workspaces()[0]
    cp = store.campaigns.list_campaigns(ws.id)[0]
    write = _writer(store)
    t0 = DELIVERED + 600 * S
    write([
        _rec("a0", people[0][0], t0, ip="172.56.9.9"),
        _rec("a1", people[0][1], t0 + 300_000, ip="172.56.9.9"),
        _rec("b0", people[1][0], t0 + 40 * S, ip="172.57.1.1", method="HEAD"),
    ])  # fmt: skip
    pending = bots.pending_verdicts(store.clicks, cp.id, settle_us=900 * S)
    assert pending == bots.Pending(requests=3, counted=2, settles_us=t0 + 940 * S)
    inbox = InboxWriter(engine)
    inbox([orjson.dumps(_rec("c0", people[2][0], t0 + 50 * S), default=tuple)])
    inbox.close()
    assert clicks.finalize_campaign(store.clicks, SignalsClassifier(), cp.id, t0 + 60 * S) == 4
    assert _verdicts(engine) == {
        "a0": ("scanner", True), "a1": ("scanner", True), "b0": ("probe", True),
        "c0": ("human", True),
    }  # fmt: skip
    assert bots.pending_verdicts(store.clicks, cp.id) == bots.Pending(0, 0, None)
    # The command line, on a new request: it reports how many it finalized.
    write([_rec("d0", people[3][0], t0 + 70 * S, ip="172.58.3.3")])
    env = {
        "PATH": os.environ.get("PATH", ""), **PYTHONPATH, "HOME": str(tmp_path), "NO_COLOR": "1",
        "CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    cli = [str(Path(sys.executable).with_name("clicktrail")), "bots", "finalize", cp.slug,
           "-w", ws.slug, "--json"]  # fmt: skip
    run = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"campaign": cp.slug, "finalized": 1}
    assert _verdicts(engine)["d0"] == ("human", True)
    run = subprocess.run([*cli[:3], "no-such-campaign", *cli[4:]], env=env, capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert run.returncode != 0
    assert "no-such-campaign" in run.stderr


def test_finalize_over_the_api_is_scoped_to_the_key_s_workspace(api: Api, tmp_path: Path) -> None:
    store, engine = Repos.on(api.container.engine), api.container.engine
    make_contacts(store, api.ws, 2)
    cp = make_campaign(store, api.ws, "Hi https://shop.example.com/a")
    send(store, api.ws, cp, tmp_path / "o.jsonl")
    resolver = TokenResolver(engine)
    try:
        target = resolver.resolve(tokens_of(store, cp)[0][0])
    finally:
        resolver.close()
    _writer(store)([_rec("x0", target, DELIVERED + 60 * S)])
    other_key = make_api_key(store, make_workspace(store))
    path = f"/v1/campaigns/{cp.slug}/bots/finalize"
    problem(api.call("POST", path, key=other_key), 404, "campaign")
    assert _verdicts(engine)["x0"] == ("human", False)
    problem(api.call("POST", path, key=None), 401)
    assert ok(api.call("POST", path)) == {"campaign": cp.slug, "finalized": 1}
    assert _verdicts(engine)["x0"] == ("human", True)
    assert ok(api.call("POST", path)) == {"campaign": cp.slug, "finalized": 0}


def test_links_on_a_plain_http_domain_do_not_expect_secure_headers(
    store: Repos, engine: sa.Engine, tmp_path: Path, database_url: str
) -> None:
    """Browsers send Fetch Metadata and client hints to secure origins only: a domain served
    over plain HTTP turns `expect_secure_headers` off for its campaigns' requests, unless its
    host is a loopback one (http://127.0.0.1 is a secure context: Chromium sends them)."""
    ws = make_workspace(store)
    make_contacts(store, ws, 1)
    targets = {}
    for scheme, host in (("http", "http.example.com"), ("https", "https.example.com"),
                         ("loopback", "127.0.0.1")):  # fmt: skip
        make_domain(store, ws, host, scheme="https" if scheme == "https" else "http")
        cp = make_campaign(store, ws, "Hi https://shop.example.com/a", domain_host=host)
        send(store, ws, cp, tmp_path / f"{scheme}.jsonl")
        resolver = TokenResolver(engine)
        try:
            targets[scheme] = resolver.resolve(tokens_of(store, cp)[0][0])
        finally:
            resolver.close()
    # What Chrome sends to an http:// origin: no Sec-Fetch-*, no Sec-CH-UA.
    plain = {"accept": "text/html,*/*;q=0.8", "accept-language": "en-US,en;q=0.9",
             "accept-encoding": "gzip, deflate", "_http": "1.1"}  # fmt: skip
    at = DELIVERED + 600 * S
    records = [_rec(scheme, target, at, ua=ANDROID, headers=plain)
               for scheme, target in targets.items()]  # fmt: skip
    settings = load_settings(
        env={"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    )
    container = Container(settings)
    try:
        store.clicks.insert_clicks(records)
        clicks.ClassifyNew(store.clicks, container.classifier)()
    finally:
        container.dispose()
    verdicts = _verdicts(engine)
    assert verdicts["http"] == ("human", False)
    assert verdicts["https"][0] != "human"
    assert verdicts["loopback"][0] != "human"
