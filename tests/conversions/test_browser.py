"""The browser's ways in, in process on SQLite and PostgreSQL: /ct.js as served, the beacon
and the pixel with a publishable key (click ids only, never contacts; API keys and postback
secrets refused), bounded bodies, and refusals in the rejected log."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from conversion_world import make_world

from clicktrail.storage.conversions import ConversionQueries
from clicktrail.web.conversions_public import PIXEL
from inprocess_api import Api, ok, problem


def publishable(api: Api) -> str:
    made = ok(api.call("POST", "/v1/publishable-keys", json={"name": "shop"}), 201)
    assert made["secret"].startswith("pk_")
    return str(made["secret"])


def beacon(body: object) -> dict[str, object]:
    # What navigator.sendBeacon sends: JSON as text/plain (no CORS preflight).
    return {"key": None, "content": json.dumps(body).encode(),
            "headers": {"content-type": "text/plain;charset=UTF-8"}}  # fmt: skip


def test_the_snippet_is_served_as_javascript(api: Api) -> None:
    r = api.call("GET", "/ct.js", key=None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "sendBeacon" in r.text and "/v1/conversions/beacon" in r.text
    assert "http" not in r.text.replace("https:", "").split("*/", 1)[1]  # loads nothing else


def test_beacon_and_pixel_record_a_click_conversion(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    cid, cid2 = w.clicks(2)
    pk = publishable(api)
    body = {"key": pk, "ct_cid": cid, "event": "signup", "metadata": {"page": "/thanks"}}
    pixel = "/v1/conversions/pixel.gif?" + urlencode(
        {"key": pk, "cid": cid2, "event": "purchase", "value": "9.5", "currency": "GBP",
         "txn": "p-1"}
    )  # fmt: skip
    first, again, img = api.calls([
        ("POST", "/v1/conversions/beacon", beacon(body)),
        ("POST", "/v1/conversions/beacon", beacon(body)),
        ("GET", pixel, {"key": None}),
    ])  # fmt: skip
    assert (
        ok(first)["outcome"] == "accepted" and first.headers["access-control-allow-origin"] == "*"
    )
    assert ok(again)["outcome"] == "duplicate"
    assert img.status_code == 200 and img.content == PIXEL
    assert img.headers["content-type"] == "image/gif"
    assert img.headers["x-clicktrail-outcome"] == "accepted"
    items = ok(api.call("GET", "/v1/conversions"))["items"]
    assert [(x["source"], x["event"], x["click_id"], x["value"]) for x in items] == [
        ("beacon", "signup", cid, None), ("pixel", "purchase", cid2, "9.5")
    ]  # fmt: skip
    assert items[0]["metadata"] == {"page": "/thanks"}


def test_browsers_name_clicks_only_with_a_publishable_key(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    pk = publishable(api)
    pbs = ok(api.call("POST", "/v1/postback-secrets", json={"name": "n"}), 201)["secret"]
    answers = api.calls([
        ("POST", "/v1/conversions/beacon", beacon({"key": pk, "contact": {"phone": "+14155550001"}})),
        ("POST", "/v1/conversions/beacon", beacon({"key": pbs, "ct_cid": cid})),
        ("POST", "/v1/conversions/beacon", beacon({"key": api.key, "ct_cid": cid})),
        ("POST", "/v1/conversions/beacon", beacon({"ct_cid": cid})),
        ("POST", "/v1/conversions/beacon", {"key": None, "content": b"{not json"}),
        ("POST", "/v1/conversions/beacon", {"key": None, "content": b"{" + b" " * 9000 + b"}"}),
        ("POST", "/v1/conversions/beacon", beacon({"key": pk, "ct_cid": "AAAAAAAAAAAAAAAA"})),
        ("GET", "/v1/conversions/pixel.gif?" + urlencode({"key": pk}), {"key": None}),
        ("GET", "/v1/conversions/pixel.gif?" + urlencode({"secret": pbs, "cid": cid}), {"key": None}),
    ])  # fmt: skip
    assert problem(answers[0], 422, "contact")
    for r in answers[1:4]:
        assert problem(r, 401, "key")
    assert problem(answers[4], 422, "body")
    assert problem(answers[5], 413)
    assert problem(answers[6], 422, "click_id")["code"] == "unknown_click"
    assert problem(answers[7], 422, "cid")
    assert problem(answers[8], 401, "key")
    assert ok(api.call("GET", "/v1/conversions"))["items"] == []
    log = ok(api.call("GET", "/v1/conversions/rejected"))["items"]
    assert [(r["source"], r["reason"]) for r in log] == [
        ("pixel", "invalid"), ("beacon", "unknown_click"), ("beacon", "invalid")
    ]  # fmt: skip
    anonymous = ConversionQueries(api.container.engine).rejections_page(None, None, 50)
    assert [r.reason for r in anonymous] == [
        "unauthorized",
        "too_large",
        "invalid",
        "unauthorized",
        "unauthorized",
        "unauthorized",
    ]
    assert all(pbs not in r.query and api.key not in r.query for r in anonymous)
