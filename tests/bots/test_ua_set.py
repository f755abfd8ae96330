"""Non-browser user agents (issue 14): the rule, the list of human apps, and the labelled set of
bench/bots_ua.tsv scored through the real classifier (provisional and final verdicts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from clicktrail.cli.bots import explain_request
from clicktrail.domain.bots.rules import NOT_HUMAN, browser_shaped
from clicktrail.signals.human_apps import HUMAN_APPS
from clicktrail.signals.ua import ua_facts

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bots_ua.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bots_ua_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _verdict(ua: str) -> tuple[str, tuple[str, ...]]:
    v = explain_request(
        method="GET", user_agent=ua, headers=bench.browser_headers(ua), ip="203.0.113.7",
        ms_since_delivery=300_000,
    )  # fmt: skip
    return v.verdict, v.reasons


@pytest.mark.parametrize(
    "ua",
    [
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; like FeedFetcher-Google)",
        "Mozilla/5.0 (compatible; SomeFetcher/2.1; +http://fetcher.example.com/about)",
        "kube-probe/1.29",
        "Consul Health Check",
        "Exit1-Website-Monitor/1.0",
        "python-httpx/0.27.0",
        "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A.240505.004)",
        "MyApp/1.0 CFNetwork/1494.0.7 Darwin/23.4.0",
        "Mozilla/5.0 (compatible; InternetMeasurement/1.0; +https://internet-measurement.com/)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36 (+https://example.com/our-checker)",
    ],
)
def test_a_user_agent_that_is_no_browser_is_not_counted(ua: str) -> None:
    verdict, reasons = _verdict(ua)
    assert verdict in NOT_HUMAN
    assert reasons in (("UA_NON_BROWSER",), ("UA_BOT_LIST",))


@pytest.mark.parametrize(
    "ua",
    [
        "Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots",
        "Mozilla/5.0 (compatible; SnapURLPreview/1.0; +https://www.snapchat.com)",
        "Mozilla/5.0 (compatible; Snapchat/1.0; +https://www.snapchat.com)",
        "SnapPreviewBot",
    ],
)
def test_snapchat_preview_fetchers_are_previews(ua: str) -> None:
    assert _verdict(ua) == ("preview", ("UA_PREVIEW_SNAPCHAT",))


@pytest.mark.parametrize(
    "ua",
    [
        "Snapchat/13.10.0.40 (iPhone15,2; iOS 17.5; gzip)",  # the app's API client
        "Instagram 337.0.3.23.54 Android (34/14; 480dpi; 1080x2340; samsung; SM-S918B)",
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
        "Safari/537.36 (compatible; TikTokSpider; ttspider-feedback@tiktok.com)",
    ],
)
def test_an_app_token_outside_a_web_view_is_not_a_person(ua: str) -> None:
    assert ua_facts(ua).in_app is None
    assert _verdict(ua)[0] in NOT_HUMAN


@pytest.mark.parametrize(
    "ua",
    [
        "Opera/9.80 (J2ME/MIDP; Opera Mini/4.2.14912/35.7608; U; en) Presto/2.8.119 Version/11.10",
        "UCWEB/2.0 (MIDP-2.0; U; Adr 9.0.0; en-US; SM-J260G) U2/1.0.0 UCBrowser/10.9.8.1006 U2/1.0.0 "
        "Mobile",
        "Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 Snapchat/13.10.0.40 (like Safari/8618.2.12.10.5, panda)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148",
    ],
)
def test_known_human_apps_and_web_views_still_count(ua: str) -> None:
    assert _verdict(ua)[0] in ("human", "suspect")


def test_every_human_app_names_its_source() -> None:
    for app in HUMAN_APPS:
        assert app.kind in ("in_app", "browser")
        assert app.token.strip() and len(app.source) > 20, app


def test_browser_shape() -> None:
    assert browser_shaped(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:139.0) Gecko/20100101 Firefox/139.0"
    )
    assert not browser_shaped("Mozilla/5.0 (compatible; Foo/1.0)")
    assert not browser_shaped("Go-http-client/2.0")


@pytest.fixture(scope="module")
def judged() -> list[object]:
    return list(bench.judge(bench.load()))


def test_the_labelled_set_is_large_and_sourced() -> None:
    rows = bench.load()
    for label in ("bot", "human"):
        assert sum(r.label == label for r in rows) >= 400
        assert sum(r.label == label and r.split == "heldout" for r in rows) >= 100
    assert all(r.source.strip() for r in rows)
    assert len({r.user_agent for r in rows}) == len(rows)


@pytest.mark.parametrize("path", ["provisional", "final"])
def test_bot_filtering_on_the_labelled_set(judged: list[object], path: str) -> None:
    """Issue 14's goal: at least 98 % of bots filtered, at most 0.5 % of people lost."""
    overall = bench.rates(judged, None, path)
    assert overall.detection >= 0.98
    assert overall.false_positive <= 0.005
    for split in ("dev", "heldout"):
        assert bench.rates(judged, split, path).detection >= 0.98
