"""Attribution over HTTP, in process on SQLite and PostgreSQL: settings of a workspace and a
campaign, and the conversions report of scenario.py with every figure worked out."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario import TA, TB, H, Scenario, build

from clicktrail.services.attribution import Attributor
from factories import Repos, make_api_key
from inprocess_api import Api, ok, problem

NOW = TB + 30 * 86_400 * 1_000_000


@pytest.fixture
def sc(api: Api, tmp_path: Path) -> tuple[Scenario, str]:
    repos = Repos.on(api.container.engine)
    sc = build(repos, tmp_path, host="attr.example.com")
    Attributor(api.container.attribution).run_pending(NOW)
    return sc, make_api_key(repos, sc.ws)


def test_settings_default_then_changed_then_inherited(api: Api) -> None:
    got = ok(api.call("GET", "/v1/attribution"))
    assert got == {
        "model": "last_click", "click_window": "5d", "delivery_window": "12h",
        "click_window_seconds": 432000, "delivery_window_seconds": 43200,
        "source": {"model": "default", "click_window": "default", "delivery_window": "default"},
        "stored": {"model": None, "click_window": None, "delivery_window": None},
        "revision": 0, "attributed_revision": 0, "reattribution_pending": False,
    }  # fmt: skip
    put = ok(
        api.call("PUT", "/v1/attribution", json={"click_window": "24h", "model": "last_touch"})
    )
    assert (put["model"], put["click_window"], put["source"]["click_window"]) == (
        "last_touch", "24h", "workspace",
    )  # fmt: skip
    assert put["reattribution_pending"] and put["revision"] == 1
    back = ok(api.call("PUT", "/v1/attribution", json={"click_window": "inherit"}))
    assert (back["click_window"], back["model"], back["stored"]["click_window"]) == (
        "5d", "last_touch", None,
    )  # fmt: skip


def test_campaign_settings_and_bad_input(api: Api, sc: tuple[Scenario, str]) -> None:
    _, key = sc
    put, got, bad_model, bad_window, unknown, extra = api.calls([
        ("PUT", "/v1/campaigns/summer/attribution", {"key": key, "json": {"delivery_window": "1h"}}),
        ("GET", "/v1/campaigns/summer/attribution", {"key": key}),
        ("PUT", "/v1/campaigns/summer/attribution", {"key": key, "json": {"model": "linear"}}),
        ("PUT", "/v1/attribution", {"key": key, "json": {"click_window": "2 weeks"}}),
        ("GET", "/v1/campaigns/nope/attribution", {"key": key}),
        ("PUT", "/v1/attribution", {"key": key, "json": {"window": "1h"}}),
    ])  # fmt: skip
    assert ok(put)["delivery_window"] == "1h"
    assert ok(got)["source"] == {
        "model": "default", "click_window": "default", "delivery_window": "campaign",
    }  # fmt: skip
    assert "linear" in problem(bad_model, 422, "model")["detail"]
    assert "2 weeks" in problem(bad_window, 422, "click_window")["detail"]
    problem(unknown, 404, "campaign")
    problem(extra, 422, "/window")
    assert ok(api.call("GET", "/v1/attribution", key=key))["stored"]["click_window"] is None


def test_conversions_report_of_the_scenario(api: Api, sc: tuple[Scenario, str]) -> None:
    _, key = sc
    b, b_touch, a, bad = api.calls([
        ("GET", "/v1/campaigns/summer/report/conversions", {"key": key}),
        ("GET", "/v1/campaigns/summer/report/conversions?model=last_touch", {"key": key}),
        ("GET", "/v1/campaigns/spring/report/conversions", {"key": key}),
        ("GET", "/v1/campaigns/spring/report/conversions?model=linear", {"key": key}),
    ])  # fmt: skip
    r = ok(b)
    assert r["settings"]["model"] == "last_click" and r["settings"]["click_window"] == "5d"
    # X0 (100 USD, 2 h after c0's click on B) and X5 (10 USD, 5 h after).
    assert (r["delivered"], r["unique_clicks"], r["conversions"], r["converters"]) == (5, 1, 2, 1)
    assert (r["conversion_rate"], r["ctcr"]) == (0.4, 1.0)
    assert r["revenue"] == [{"currency": "USD", "revenue": 110.0, "rpm": 22.0, "aov": 55.0}]
    assert r["time_to_convert"]["median_s"] == 3.5 * 3600
    assert r["variants"] is None and not r["reattribution_pending"]
    t = ok(b_touch)
    assert t["settings"]["source"]["model"] == "request"
    # Plus the views X2 (c2, 30 USD) and X3 (c3, 20 EUR: its B fetch was a preview).
    assert (t["conversions"], t["view_conversions"], t["converters"]) == (4, 2, 3)
    assert t["revenue"] == [
        {"currency": "EUR", "revenue": 20.0, "rpm": 4.0, "aov": 20.0},
        {"currency": "USD", "revenue": 140.0, "rpm": 28.0, "aov": pytest.approx(140 / 3)},
    ]
    s = ok(a)
    # X1 (c1 on a2, 50 USD) and X4 (c4 on a1, no value, its click still provisional).
    assert (s["conversions"], s["unique_clicks"], s["unsettled"]) == (2, 3, 1)
    assert s["ctcr"] == pytest.approx(2 / 3)
    assert s["revenue"] == [{"currency": "USD", "revenue": 50.0, "rpm": 10.0, "aov": 50.0}]
    assert s["time_to_convert"]["count"] == 2
    assert s["time_to_convert"]["median_s"] == ((TB + 2 * H - TA - H // 6) + 22 * H) / 2e6
    links = {x["link"]: (x["conversions"], x["unique_clicks"], x["ctcr"]) for x in s["links"]}
    assert links == {1: (1, 2, 0.5), 2: (1, 1, 1.0), 3: (0, 1, 0.0)}  # 3: the opt-out link
    problem(bad, 422, "model")
