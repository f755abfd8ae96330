"""Requests are judged with their own workspace's network lists (over the installation's file),
in the jobs' classifier, the settle-window pass and re-classification — on SQLite and
PostgreSQL. A workspace's list never changes another workspace's verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clicktrail.bootstrap import Container, SignalsClassifier
from clicktrail.config import load_settings
from clicktrail.domain.models import Receipt, Workspace
from clicktrail.services import bots, clicks, networks
from clicktrail.services.ports import ClickRecord
from clicktrail.signals import (
    NetworkList,
    NetworkRange,
    WorkspaceNetworks,
    ip_facts,
    range_file_entries,
)
from clicktrail.storage.resolver import TokenResolver
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    send,
    tokens_of,
)

S = 1_000_000
DELIVERED = NOW_US
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
SAFARI = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9", "accept-encoding": "gzip, deflate, br",
    "sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document",
    "_http": "1.1",
}  # fmt: skip
CHROME_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/137.0.0.0 Safari/537.36"
)
CHROME = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9", "accept-encoding": "gzip, deflate, br, zstd",
    "sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document",
    "sec-fetch-user": "?1", "sec-ch-ua": '"Chromium";v="137", "Not/A)Brand";v="24"',
    "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Windows"', "_http": "2",
}  # fmt: skip
# Documentation ranges: the bundled dataset knows nothing of them, only the lists do.
LISTED_IP = "198.51.100.7"
OTHER_IP = "192.0.2.80"


def _world(store: Repos, engine: sa.Engine, tmp: Path, host: str, n: int = 8) -> tuple[
    Workspace, Any, list[Any]
]:  # fmt: skip
    """A workspace with a campaign of `n` delivered recipients; returns (workspace, campaign,
    resolved target per recipient)."""
    ws = make_workspace(store)
    make_domain(store, ws, host)
    make_contacts(store, ws, n)
    cp = make_campaign(store, ws, "Hi https://shop.example.com/a")
    send(store, ws, cp, tmp / f"{host}.jsonl")
    store.messages.apply_receipts(
        ws.id, [Receipt(i, "delivered", DELIVERED) for i in message_ids(store, cp)],
        skip_unknown=False, source="test", now_us=NOW_US,
    )  # fmt: skip
    resolver = TokenResolver(engine)
    try:
        targets = [resolver.resolve(t) for t, _, _ in tokens_of(store, cp)]
    finally:
        resolver.close()
    return ws, cp, sorted(targets, key=lambda t: t.message_id)


def _rec(cid: str, target: Any, at_us: int, ip: str, ua: str = IPHONE,
         headers: dict[str, str] | None = None) -> ClickRecord:  # fmt: skip
    return ClickRecord(
        cid, "tok", target.campaign_id, target.link_id, target.message_id, target.contact_id,
        at_us, "GET", ip, ua, dict(SAFARI if headers is None else headers),
    )  # fmt: skip


@pytest.fixture
def classifier(database_url: str, tmp_path: Path) -> Iterator[Callable[..., SignalsClassifier]]:
    """Returns a new process's classifier (its own container, settings from `env`)."""
    made: list[Container] = []

    def make(**env: str) -> SignalsClassifier:
        settings = {"CLICKTRAIL_DATABASE_URL": database_url,
                    "CLICKTRAIL_DATA_DIR": str(tmp_path / "data"), **env}  # fmt: skip
        made.append(Container(load_settings(env=settings)))
        return made[-1].classifier

    yield make
    for c in made:
        c.dispose()


def _verdicts(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        return {
            r[0]: (r[1], str(r[2]))
            for r in conn.execute(sa.text("SELECT click_id, verdict, reasons FROM clicks"))
        }


def _add(store: Repos, ws: Workspace, name: str, *sources: str, **kw: str) -> None:
    networks.add_ranges(
        store.network_lists,
        ws,
        name,
        list(sources),
        read_file=range_file_entries,
        now_us=NOW_US,
        **kw,
    )


def test_a_request_from_a_listed_hosting_range_is_not_a_click_in_that_workspace_only(
    store: Repos, engine: sa.Engine, tmp_path: Path, classifier: Callable[..., SignalsClassifier]
) -> None:
    ws_a, cp_a, a = _world(store, engine, tmp_path, "a.example.com")
    _, cp_b, b = _world(store, engine, tmp_path, "b.example.com")
    _add(store, ws_a, "own-cloud", "198.51.100.0/24", kind="hosting", owner="Acme DC")
    classify = clicks.ClassifyNew(store.clicks, classifier())
    at = DELIVERED + 600 * S
    store.clicks.insert_clicks([
        _rec("a-listed", a[0], at, LISTED_IP, CHROME_DESKTOP, CHROME),
        _rec("a-other", a[1], at, OTHER_IP, CHROME_DESKTOP, CHROME),
        _rec("b-same-ip", b[0], at, LISTED_IP, CHROME_DESKTOP, CHROME),
    ])  # fmt: skip
    classify()
    v = _verdicts(engine)
    assert v["a-listed"][0] == "scanner" and "NET_HOSTING" in v["a-listed"][1]
    assert v["a-other"][0] == "human"
    assert v["b-same-ip"][0] == "human"  # workspace B has no such list
    assert (
        store.reports.campaign_report(cp_a).total_clicks,
        store.reports.campaign_report(cp_a).raw_total_clicks,
    ) == (1, 2)
    assert store.reports.campaign_report(cp_b).total_clicks == 1


def test_a_scanner_list_catches_a_perfect_mobile_browser(
    store: Repos, engine: sa.Engine, tmp_path: Path, classifier: Callable[..., SignalsClassifier]
) -> None:
    ws, _, targets = _world(store, engine, tmp_path, "a.example.com")
    _add(store, ws, "carrier-scanner", "198.51.100.0/25", kind="scanner")
    classify = clicks.ClassifyNew(store.clicks, classifier())
    store.clicks.insert_clicks([_rec("c", targets[0], DELIVERED + 600 * S, LISTED_IP)])
    classify()
    verdict, reasons = _verdicts(engine)["c"]
    assert verdict not in ("human", "suspect") and "NET_LISTED" in reasons


def _fanout(store: Repos, targets: list[Any], prefix: str) -> None:
    """Six recipients tapping within a minute from one address, each like a person."""
    t0 = DELIVERED + 600 * S
    store.clicks.insert_clicks(
        [_rec(f"{prefix}{i}", targets[i], t0 + i * 5 * S, LISTED_IP) for i in range(6)]
    )


def test_a_workspace_mobile_list_keeps_carrier_nat_from_fanning_out(
    store: Repos, engine: sa.Engine, tmp_path: Path, classifier: Callable[..., SignalsClassifier]
) -> None:
    ws_a, _, a = _world(store, engine, tmp_path, "a.example.com")
    _, _, b = _world(store, engine, tmp_path, "b.example.com")
    _add(store, ws_a, "carriers", "198.51.100.0/24", kind="mobile", owner="Example Mobile")
    judge = classifier()
    _fanout(store, a, "a")
    _fanout(store, b, "b")
    clicks.ClassifyNew(store.clicks, judge)()
    bots.finalize_settled(
        store.clicks, DELIVERED + 10_000 * S, settle_us=900 * S, ip_kind=judge.ip_kind
    )
    v = _verdicts(engine)
    # Workspace A's carrier address: six people behind one NAT stay people.
    assert {v[f"a{i}"][0] for i in range(6)} == {"human"}
    # The same pattern in workspace B, which listed nothing: a fan-out.
    assert {v[f"b{i}"][0] for i in range(6)} == {"scanner"}
    assert "FANOUT_IP_60S" in v["b0"][1]


def test_relay_list_also_marks_shared_addresses() -> None:
    relay = NetworkList([NetworkRange(_net("198.51.100.0/24"), "Relay Co", "relay", "relays")])
    assert ip_facts(LISTED_IP, relay).kind == "relay"
    assert ip_facts(LISTED_IP, relay).listed is None  # a relay is never held against a request


def _net(cidr: str) -> Any:
    import ipaddress

    return ipaddress.ip_network(cidr)


def test_reclassify_after_adding_a_list_changes_history_and_the_report(
    store: Repos, engine: sa.Engine, tmp_path: Path, classifier: Callable[..., SignalsClassifier]
) -> None:
    ws, cp, targets = _world(store, engine, tmp_path, "a.example.com")
    clicks.ClassifyNew(store.clicks, classifier())()
    at = DELIVERED + 600 * S
    store.clicks.insert_clicks([
        _rec("scan", targets[0], at, LISTED_IP, CHROME_DESKTOP, CHROME),
        _rec("person", targets[1], at + 30 * S, OTHER_IP, CHROME_DESKTOP, CHROME),
    ])  # fmt: skip
    clicks.ClassifyNew(store.clicks, classifier())()
    assert store.reports.campaign_report(cp).total_clicks == 2
    csv_file = tmp_path / "dc.csv"
    csv_file.write_text("cidr,owner,kind,source\n198.51.100.0/24,Acme DC,hosting,dc\n")
    _add(store, ws, "dc", str(csv_file))
    # What `clicktrail bots reclassify` does: a fresh process's classifier.
    result = bots.reclassify(
        store.clicks, classifier(), DELIVERED + 10_000 * S,
        settle_us=900 * S,
    )  # fmt: skip
    assert (result.requests, result.verdict_changes) == (2, 1)
    v = _verdicts(engine)
    assert v["scan"][0] == "scanner" and v["person"][0] == "human"
    report = store.reports.campaign_report(cp)
    assert (report.total_clicks, report.raw_total_clicks) == (1, 2)
    assert report.by_reason["NET_HOSTING"] == 1
    # Removing the list and re-classifying gives the click back.
    networks.remove_list(store.network_lists, ws, "dc", now_us=NOW_US)
    bots.reclassify(store.clicks, classifier(),
                    DELIVERED + 10_000 * S, settle_us=900 * S)  # fmt: skip
    assert store.reports.campaign_report(cp).total_clicks == 2


def test_workspace_lists_combine_with_the_installation_file(
    store: Repos, engine: sa.Engine, tmp_path: Path, classifier: Callable[..., SignalsClassifier]
) -> None:
    """The more specific range wins across both; the installation's file still applies to
    every workspace."""
    installation = tmp_path / "clouds.csv"
    installation.write_text("cidr,owner,kind,source\n198.51.100.0/24,Some Cloud,hosting,cloud\n"
                            "203.0.113.0/24,Other Cloud,hosting,cloud\n")  # fmt: skip
    ws_a, _, a = _world(store, engine, tmp_path, "a.example.com")
    _, _, b = _world(store, engine, tmp_path, "b.example.com")
    # Workspace A knows that a part of the cloud's range is its carrier's gateway.
    _add(store, ws_a, "carriers", "198.51.100.0/28", kind="mobile")
    judge = classifier(CLICKTRAIL_BOT_NETWORKS_FILE=str(installation))
    at = DELIVERED + 600 * S
    store.clicks.insert_clicks([
        _rec("a-gw", a[0], at, LISTED_IP, CHROME_DESKTOP, CHROME),  # in A's /28
        _rec("a-cloud", a[1], at, "198.51.100.77", CHROME_DESKTOP, CHROME),  # cloud, not the /28
        _rec("a-other-cloud", a[2], at, "203.0.113.5", CHROME_DESKTOP, CHROME),
        _rec("b-gw", b[0], at, LISTED_IP, CHROME_DESKTOP, CHROME),
    ])  # fmt: skip
    clicks.ClassifyNew(store.clicks, judge)()
    v = _verdicts(engine)
    assert v["a-gw"][0] == "human"
    assert v["a-cloud"][0] == "scanner"
    assert v["a-other-cloud"][0] == "scanner"
    assert v["b-gw"][0] == "scanner"
    assert judge.ip_kind(LISTED_IP, a[0].campaign_id) == "mobile"
    assert judge.ip_kind(LISTED_IP, b[0].campaign_id) == "hosting"
    assert judge.ip_kind(LISTED_IP) == "hosting"


def test_the_classifier_reloads_a_changed_list_without_a_query_per_request(
    store: Repos, engine: sa.Engine, tmp_path: Path
) -> None:
    ws, _, targets = _world(store, engine, tmp_path, "a.example.com")
    calls = {"revisions": 0, "ranges": 0, "workspace": 0}

    def revisions() -> dict[int, int]:
        calls["revisions"] += 1
        return store.network_lists.network_list_revisions()

    def ranges_of(workspace_id: int) -> list[tuple[str, str, str, str]]:
        calls["ranges"] += 1
        return [(r.cidr, r.owner, r.kind, r.list_name)
                for r in store.network_lists.workspace_network_ranges(workspace_id)]  # fmt: skip

    def workspace_of(campaign_id: int) -> int | None:
        calls["workspace"] += 1
        return store.campaigns.campaign_workspace(campaign_id)

    lists = WorkspaceNetworks(None, revisions=revisions, ranges_of=ranges_of,
                              workspace_of=workspace_of, ttl=3600)  # fmt: skip
    judge = SignalsClassifier(workspace_networks=lists)
    _add(store, ws, "own-cloud", "198.51.100.0/24")
    records = [_rec(f"c{i}", targets[i % 8], DELIVERED + (600 + i) * S, LISTED_IP,
                    CHROME_DESKTOP, CHROME) for i in range(200)]  # fmt: skip
    clicks.ClassifyNew(store.clicks, judge)()  # nothing yet: no look-up at all
    store.clicks.insert_clicks(records)
    assert clicks.ClassifyNew(store.clicks, judge)() == 200
    assert calls == {"revisions": 1, "ranges": 1, "workspace": 1}
    assert {v for v, _ in _verdicts(engine).values()} == {"scanner"}
    # The list changes: after the next revision check the new list is used (and memoised
    # look-ups of the old list are not).
    networks.remove_list(store.network_lists, ws, "own-cloud", now_us=NOW_US)
    _add(store, ws, "carriers", "198.51.100.0/24", kind="mobile")
    req = store.clicks.requests_page(0, 1, None, None)[0][1]
    assert judge.classify(req).verdict == "scanner"  # not checked again yet
    lists.refresh()
    assert judge.classify(req).verdict == "human"
    assert calls["ranges"] == 2


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("198.51.100.7", "mobile"), ("198.51.100.200", "hosting"), ("10.9.9.9", "scanner")],
)
def test_the_more_specific_range_wins_across_layers(ip: str, expected: str) -> None:
    base = NetworkList([NetworkRange(_net("198.51.100.0/24"), "Cloud", "hosting", "cloud"),
                        NetworkRange(_net("10.9.0.0/16"), "Scan", "scanner", "scan")])  # fmt: skip
    own = NetworkList([NetworkRange(_net("198.51.100.0/25"), "Carrier", "mobile", "carriers"),
                       NetworkRange(_net("10.0.0.0/8"), "Lab", "hosting", "lab")],
                      base=base)  # fmt: skip
    hit = own.find(ip)
    assert hit is not None and hit.kind == expected
