"""Multi-touch credit on SQLite and PostgreSQL through the API: the scenario of scenario.py with
two touchpoints of other channels added, every model's credit worked out by hand below, per
conversion (the paths export) and per channel and campaign (the report); then a verdict change
and a window change, which the next answer reflects (credit is computed when read)."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from scenario import SCANNER, TB, H, Scenario, build

from clicktrail.domain.models import Workspace
from clicktrail.services import attribution, touchpoints
from clicktrail.services.exports import iso_utc
from factories import Repos, make_api_key
from inprocess_api import Api, ok, problem

MODELS = ("linear", "time_decay", "position_based", "last_click")
HOUR_HALF_LIFE = {"half_life": "1h"}


@pytest.fixture
def sc(api: Api, tmp_path: Path) -> Scenario:
    s = build(Repos.on(api.container.engine), tmp_path, host="mt.example.com")
    # c0 (ext-0): an email two hours after campaign B's delivery, a web visit at TB+4h.
    items = [
        {"channel": "email", "contact": {"external_id": "ext-0"}, "occurred_at": (TB + 2 * H) / 1e6,
         "campaign": "bf-mail", "source": "esp", "touch_id": "em-1"},
        {"channel": "web", "contact": {"external_id": "ext-0"}, "occurred_at": (TB + 4 * H) / 1e6},
    ]  # fmt: skip
    out = touchpoints.record_touchpoints(api.container.touchpoints, s.ws, items, now_us=TB + 9 * H)
    assert [o.outcome for o in out] == ["accepted", "accepted"]
    return s


def call(api: Api, ws: Workspace, path: str, **params: str) -> Any:
    key = make_api_key(Repos.on(api.container.engine), ws)
    return api.call("GET", path, params=params, key=key)


def paths(api: Api, sc: Scenario, **params: str) -> dict[str, list[dict[str, Any]]]:
    r = call(api, sc.ws, "/v1/exports/conversion-paths", format="jsonl", **params)
    assert r.status_code == 200, r.text
    out: dict[str, list[dict[str, Any]]] = {}
    for line in r.text.splitlines():
        row = json.loads(line)
        out.setdefault(row["conversion_id"].rsplit("_", 1)[1], []).append(row)
    return out


def touches(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["channel"], r["kind"], r["campaign"]) for r in rows]


def credit(rows: list[dict[str, Any]], model: str) -> list[float]:
    return [r[f"credit_{model}"] for r in rows]


def exactly(values: list[F]) -> Any:
    return pytest.approx([float(v) for v in values], rel=1e-12, abs=1e-15)


def decay(delays_h: list[int]) -> list[F]:
    """Time-decay credits with a half-life of one hour: weights 2^-delay, normalised."""
    w = [F(1, 2**d) for d in delays_h]
    return [x / sum(w) for x in w]


SPRING_A1 = ("sms", "click", "spring")
SUMMER_DELIVERY = ("sms", "delivery", "summer")
SUMMER_B1 = ("sms", "click", "summer")
EMAIL = ("email", "touch", "bf-mail")
WEB = ("web", "touch", None)


def test_every_path_and_credit_by_hand(api: Api, sc: Scenario) -> None:
    p = paths(api, sc, **HOUR_HALF_LIFE)
    # X0 (c0, TB+3h): a1 at TA+1h (50 h before; click window 5 d), B delivered at TB (3 h; the
    # delivery window is 12 h: A's delivery at TA is out), b1 at TB+1h, the email at TB+2h;
    # the web visit at TB+4h comes after it.
    x0 = p["X0"]
    assert touches(x0) == [SPRING_A1, SUMMER_DELIVERY, SUMMER_B1, EMAIL]
    assert [r["position"] for r in x0] == [1, 2, 3, 4] and {r["touches"] for r in x0} == {4}
    assert credit(x0, "linear") == exactly([F(1, 4)] * 4)
    assert credit(x0, "position_based") == exactly([F(2, 5), F(1, 10), F(1, 10), F(2, 5)])
    assert credit(x0, "time_decay") == exactly(decay([50, 3, 2, 1]))
    assert credit(x0, "last_click") == [0, 0, 0, 1]  # the email is the last click
    assert [r["delay_s"] for r in x0] == [50 * 3600, 3 * 3600, 2 * 3600, 3600]
    assert x0[0]["click_id"] == "click-0-A" and x0[0]["verdict"] == "human"
    assert x0[0]["link"] == 1 and x0[0]["message_id"].startswith("msg_")
    assert x0[0]["verdict_final"] is True and x0[1]["click_id"] is None
    assert x0[3]["touch_id"] == "em-1" and x0[3]["source"] == "esp"
    assert x0[3]["touchpoint_id"].startswith("tch_") and x0[3]["message_id"] is None
    assert x0[0]["value"] == 100.0 and x0[0]["currency"] == "USD"
    assert x0[0]["external_id"] == "ext-0" and x0[0]["touch_at"] == iso_utc(
        TB - 2 * 86400 * 10**6 + H
    )
    # X5 (by click id, c0, TB+6h): the same four and the web visit.
    x5 = p["X5"]
    assert touches(x5) == [SPRING_A1, SUMMER_DELIVERY, SUMMER_B1, EMAIL, WEB]
    assert credit(x5, "linear") == exactly([F(1, 5)] * 5)
    assert credit(x5, "position_based") == exactly([F(2, 5), F(1, 15), F(1, 15), F(1, 15),
                                                    F(2, 5)])  # fmt: skip
    assert credit(x5, "time_decay") == exactly(decay([53, 6, 5, 4, 2]))
    assert credit(x5, "last_click") == [0, 0, 0, 0, 1]
    # X1 (c1, TB+2h): a2 at TA+10min and B's delivery: two touches, 50/50; last click a2.
    assert touches(p["X1"]) == [SPRING_A1, SUMMER_DELIVERY] and p["X1"][0]["link"] == 2
    assert credit(p["X1"], "position_based") == [0.5, 0.5]
    assert credit(p["X1"], "last_click") == [1, 0]
    # X2 (c2) and X3 (c3: its scanner and preview fetches and its opt-out tap are no touches):
    # B's delivery alone, 1 under every model but last click (a delivery is no click).
    for name in ("X2", "X3"):
        assert touches(p[name]) == [SUMMER_DELIVERY]
        assert [credit(p[name], m) for m in MODELS] == [[1], [1], [1], [0]]
    # X4 (c4, TA+1d): its provisional human click counts (as single-touch credit counts it).
    assert touches(p["X4"]) == [SPRING_A1] and p["X4"][0]["verdict_final"] is False
    # X6 (c1, TA+6d): a2 is 6 days old, the deliveries too: one row without a touch.
    (x6,) = p["X6"]
    assert x6["touches"] == 0 and x6["position"] is None and x6["channel"] is None
    assert [x6[f"credit_{m}"] for m in MODELS] == [None] * 4


def share(rows: list[dict[str, Any]], **key: Any) -> dict[str, Any]:
    (row,) = [r for r in rows if all(r[k] == v for k, v in key.items())]
    return row


def test_the_report_sums_the_paths_per_channel_and_campaign(api: Api, sc: Scenario) -> None:
    r = ok(call(api, sc.ws, "/v1/attribution/channels"))
    assert r["conversions"] == 7 and r["with_touches"] == 6
    assert r["settings"]["half_life"] == "7d" and r["settings"]["touchpoint_window"] == "5d"
    sms, email, web = (share(r["channels"], channel=c) for c in ("sms", "email", "web"))
    # linear: X0 3/4, X5 3/5, X1, X2, X3, X4 1 each to sms; the email 1/4 + 1/5; web 1/5.
    assert sms["credit"]["linear"] == pytest.approx(3 / 4 + 3 / 5 + 4)
    assert email["credit"]["linear"] == pytest.approx(1 / 4 + 1 / 5)
    assert web["credit"]["linear"] == pytest.approx(1 / 5)
    # 40/20/40: sms X0 2/5 + 1/10 + 1/10, X5 2/5 + 2/15; email X0 2/5, X5 1/15; web X5 2/5.
    assert sms["credit"]["position_based"] == pytest.approx(3 / 5 + 8 / 15 + 4)
    assert email["credit"]["position_based"] == pytest.approx(7 / 15)
    assert web["credit"]["position_based"] == pytest.approx(2 / 5)
    # last click: X1 and X4 to sms clicks, X0 to the email, X5 to the web visit.
    assert [c["credit"]["last_click"] for c in (sms, email, web)] == [2, 1, 1]
    total_decay = sum(c["credit"]["time_decay"] for c in r["channels"])
    assert total_decay == pytest.approx(6)
    assert (sms["touches"], sms["conversions"]) == (11, 6)
    assert (email["touches"], email["conversions"], web["conversions"]) == (2, 2, 1)
    # Revenue under linear: sms 100·3/4 + 10·3/5 + 50 + 30 USD and 20 EUR; email 25 + 2 USD.
    assert {x["currency"]: x["linear"] for x in sms["revenue"]} == pytest.approx(
        {"EUR": 20.0, "USD": 75 + 6 + 50 + 30})  # fmt: skip
    assert email["revenue"] == [pytest.approx({"currency": "USD", "linear": 27.0,
        "time_decay": email["revenue"][0]["time_decay"], "position_based": 100 * 2 / 5 + 10 / 15,
        "last_click": 100.0})]  # fmt: skip
    spring = share(r["campaigns"], channel="sms", campaign="spring")
    summer = share(r["campaigns"], channel="sms", campaign="summer")
    assert spring["credit"]["linear"] == pytest.approx(1 / 4 + 1 / 5 + 1 / 2 + 1)
    assert summer["credit"]["linear"] == pytest.approx(1 / 2 + 2 / 5 + 1 / 2 + 2)
    assert spring["credit"]["position_based"] == pytest.approx(2 / 5 + 2 / 5 + 1 / 2 + 1)
    assert (spring["credit"]["last_click"], summer["credit"]["last_click"]) == (2, 0)
    assert share(r["campaigns"], channel="email", campaign="bf-mail")["touches"] == 2
    # The campaign's conversions report carries its share when asked, with the same settings.
    key = make_api_key(Repos.on(api.container.engine), sc.ws)
    url = "/v1/campaigns/spring/report/conversions"
    plain, asked, hour, bad = api.calls([
        ("GET", url, {"key": key}),
        ("GET", url + "?multi_touch=true", {"key": key}),
        ("GET", url + "?multi_touch=1&half_life=1h", {"key": key}),
        ("GET", url + "?multi_touch=maybe", {"key": key}),
    ])  # fmt: skip
    rep = ok(asked)
    assert rep["multi_touch"] == {
        "settings": r["settings"],
        **{k: v for k, v in spring.items() if k not in ("channel", "campaign")},
    }  # fmt: skip
    assert rep["multi_touch"]["credit"] == spring["credit"]
    assert rep["multi_touch"]["settings"]["half_life"] == "7d"
    assert rep["campaign"] == "spring" and rep["multi_touch"]["touches"] == spring["touches"]
    # By default it is left out (not null), and every other figure is the same.
    default = ok(plain)
    assert "multi_touch" not in default
    assert default == {k: v for k, v in rep.items() if k != "multi_touch"}
    by_hour = share(ok(call(api, sc.ws, "/v1/attribution/channels", **HOUR_HALF_LIFE))["campaigns"],
                    channel="sms", campaign="spring")  # fmt: skip
    assert ok(hour)["multi_touch"]["credit"] == by_hour["credit"]
    assert ok(hour)["multi_touch"]["settings"]["half_life"] == "1h"
    assert "multi_touch" in problem(bad, 422, "multi_touch")["detail"]


def test_a_verdict_change_and_a_window_change_show_in_the_next_answer(
    api: Api, sc: Scenario
) -> None:
    assert touches(paths(api, sc)["X0"]) == [SPRING_A1, SUMMER_DELIVERY, SUMMER_B1, EMAIL]
    # Finalization finds b1 of c0 was a scanner: it leaves X0's (and X5's) path.
    sc.store.clicks.save_verdicts([("click-0-B", SCANNER, True)])
    p = paths(api, sc)
    assert touches(p["X0"]) == [SPRING_A1, SUMMER_DELIVERY, EMAIL]
    assert credit(p["X0"], "linear") == exactly([F(1, 3)] * 3)
    assert credit(p["X0"], "position_based") == exactly([F(2, 5), F(1, 5), F(2, 5)])
    assert touches(p["X5"]) == [SPRING_A1, SUMMER_DELIVERY, EMAIL, WEB]
    r = ok(call(api, sc.ws, "/v1/attribution/channels"))
    assert share(r["channels"], channel="sms")["credit"]["linear"] == pytest.approx(
        2 / 3 + 2 / 4 + 4)  # fmt: skip
    # A click window of one hour (the workspace's: touchpoints follow it too): in X0 only B's
    # delivery (3 h, delivery window 12 h) and the email (exactly 1 h) remain.
    attribution.set_settings(api.container.attribution, sc.ws, None, click_window="1h",
                             now_us=TB)  # fmt: skip
    p = paths(api, sc)
    assert touches(p["X0"]) == [SUMMER_DELIVERY, EMAIL]
    assert credit(p["X0"], "last_click") == [0, 1]
    assert credit(p["X0"], "position_based") == [0.5, 0.5]
    r = ok(call(api, sc.ws, "/v1/attribution/channels"))
    assert r["settings"]["click_window"] == r["settings"]["touchpoint_window"] == "1h"


def test_exports_parse_back_in_every_format(api: Api, sc: Scenario) -> None:
    as_json = [json.loads(x) for x in call(api, sc.ws, "/v1/exports/conversion-paths",
                                           format="jsonl").text.splitlines()]  # fmt: skip
    r = call(api, sc.ws, "/v1/exports/conversion-paths", format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(as_json) == 4 + 5 + 2 + 1 + 1 + 1 + 1
    assert [float(x["credit_linear"] or 0) for x in rows] == pytest.approx(
        [x["credit_linear"] or 0 for x in as_json])  # fmt: skip
    r = call(api, sc.ws, "/v1/exports/conversion-paths", format="parquet", phone="omit")
    table = pq.read_table(io.BytesIO(r.content))
    assert "phone" not in table.column_names and table.num_rows == len(as_json)
    assert str(table.schema.field("touch_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("credit_time_decay").type) == "double"
    assert str(table.schema.field("position").type) == "int32"
    got = table.to_pylist()
    assert [g["credit_position_based"] for g in got] == [
        a["credit_position_based"] for a in as_json
    ]
    # Only X2 to X4 occurred in [TB+4h, TB+5h]: the range filters conversions.
    window = paths(api, sc, since=iso_utc(TB + 4 * H) or "", until=iso_utc(TB + 5 * H + 1) or "")
    assert sorted(window) == ["X2", "X3"]
    bad = call(api, sc.ws, "/v1/exports/conversion-paths", half_life="0h")
    problem(bad, 422, "half_life")
    problem(call(api, sc.ws, "/v1/attribution/channels", half_life="91d"), 422, "half_life")
    problem(call(api, sc.ws, "/v1/exports/conversion-paths", format="xlsx"), 422, "format")
