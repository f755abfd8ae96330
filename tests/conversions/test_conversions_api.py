"""POST/GET /v1/conversions through the whole app on SQLite and PostgreSQL: click ids of real
clicks (in the inbox moments after the click, in `clicks` later), contacts, dedup forever,
duplicate modes, per-item outcomes of a batch, bad input, and another workspace's ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from conversion_world import click, make_world, other_workspace, post, settle

from clicktrail.services.clock import now_us
from clicktrail.services.conversions import ClickRef
from clicktrail.storage import tables as t
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.inbox import InboxWriter
from clicktrail.web.redirect import new_click_id
from inprocess_api import Api, ok, problem


def test_a_click_id_moments_old_resolves_from_the_inbox_and_dedups_forever(
    api: Api, tmp_path: Path
) -> None:
    w = make_world(api, tmp_path)

    async def use(c: httpx.AsyncClient) -> list[httpx.Response]:
        cid = await click(c, w.tokens[0])
        await settle(api, cid)  # in the inbox now, most likely not yet in `clicks`
        body = {"click_id": cid, "event": "Purchase", "value": "12.50", "currency": "eur",
                "txn": "order-1", "metadata": {"coupon": "SALE10"}}  # fmt: skip
        return [await post(c, api.key, body), await post(c, api.key, body)]

    first, again = w.run(use)
    made = ok(first, 201)
    assert made["outcome"] == "accepted"
    conv = made["conversion"]
    assert first.headers["location"] == f"/v1/conversions/{conv['id']}"
    assert conv["event"] == "purchase" and conv["value"] == "12.5"
    assert conv["value_micros"] == 12_500_000 and conv["currency"] == "EUR"
    assert conv["campaign"] == w.campaign.slug and conv["link"] == 1
    assert conv["contact"] == "ext-0" and conv["message"].startswith("msg_")
    assert conv["txn"] == "order-1" and conv["source"] == "api"
    assert conv["metadata"] == {"coupon": "SALE10"}
    dup = ok(again)
    assert dup["outcome"] == "duplicate" and dup["conversion"]["id"] == conv["id"]
    # Later (the click now in `clicks`), the same order through a contact instead: one order.
    late = ok(api.call("POST", "/v1/conversions", json={
        "contact": {"external_id": "ext-1"}, "event": "purchase", "txn": "order-1"}))  # fmt: skip
    assert late["outcome"] == "duplicate" and late["conversion"]["id"] == conv["id"]
    listed = ok(api.call("GET", "/v1/conversions"))
    assert [x["id"] for x in listed["items"]] == [conv["id"]]
    assert ok(api.call("GET", f"/v1/conversions/{conv['id']}")) == conv


def test_a_batch_answers_each_item_in_order(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    cid, cid2 = w.clicks(2)
    future = (now_us() + 3_600_000_000) // 1_000_000
    items: list[Any] = [
        {"click_id": cid, "event": "signup"},
        {"ct_cid": cid, "event": "signup"},  # the same again in the batch
        {"click_id": "AAAAAAAAAAAAAAAAAAAAAA", "event": "signup"},
        {"contact": {"phone": "+14155550002"}, "value": 3, "currency": "USD"},
        {"contact": {"external_id": "nobody"}},
        {"click_id": cid2, "value": "1.5"},
        {"click_id": cid2, "currency": "XYZ", "value": 1},
        {"click_id": cid2, "occurred_at": future},
        {"click_id": cid2, "amount": 3},
        "not an object",
        {"event": "x"},
        {"click_id": cid2, "value": "0.0000001", "currency": "USD"},
    ]
    out = ok(api.call("POST", "/v1/conversions", json={"conversions": items}))
    got = [(r["outcome"], r.get("field")) for r in out["results"]]
    assert got == [
        ("accepted", None),
        ("duplicate", None),
        ("unknown_click", "/conversions/2/click_id"),
        ("accepted", None),
        ("unknown_contact", "/conversions/4/contact"),
        ("invalid", "/conversions/5/currency"),
        ("invalid", "/conversions/6/currency"),
        ("invalid", "/conversions/7/occurred_at"),
        ("invalid", "/conversions/8/amount"),
        ("invalid", "/conversions/9"),
        ("invalid", "/conversions/10/click_id"),
        ("invalid", "/conversions/11/value"),
    ]
    assert out["results"][1]["id"] == out["results"][0]["id"]
    assert "future" in out["results"][7]["detail"]
    assert out["counts"] == {"accepted": 2, "duplicate": 1, "unknown_click": 1,
                             "unknown_contact": 1, "invalid": 7}  # fmt: skip
    stored = ok(api.call("GET", "/v1/conversions"))["items"]
    assert [(x["event"], x["contact"], x["value"]) for x in stored] == [
        ("signup", "ext-0", None),
        ("conversion", "ext-2", "3"),
    ]


def test_duplicate_modes_count_and_replace(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    assert ok(api.call("PUT", "/v1/conversions/events/Renewal",
                       json={"duplicate_mode": "count"}))["event"] == "renewal"  # fmt: skip
    ok(api.call("PUT", "/v1/conversions/events/purchase", json={"duplicate_mode": "replace"}))
    renewal = {"click_id": cid, "event": "renewal", "value": 5, "currency": "USD"}
    purchase = {"click_id": cid, "event": "purchase", "value": 10, "currency": "USD"}
    items = [
        renewal, renewal, {**renewal, "txn": "r-1"}, {**renewal, "txn": "r-1"},
        purchase, {**purchase, "value": 12}, {**purchase, "value": 12}, {"click_id": cid},
        {"click_id": cid},
    ]  # fmt: skip
    out = ok(api.call("POST", "/v1/conversions", json={"conversions": items}))
    assert [r["outcome"] for r in out["results"]] == [
        "accepted", "accepted", "accepted", "duplicate",
        "accepted", "replaced", "duplicate", "accepted", "duplicate",
    ]  # fmt: skip
    stored = ok(api.call("GET", "/v1/conversions", params={"event": "purchase"}))["items"]
    assert [(x["value"], x["updated_at"] is not None) for x in stored] == [("12", True)]
    assert len(ok(api.call("GET", "/v1/conversions", params={"event": "renewal"}))["items"]) == 3
    modes = ok(api.call("GET", "/v1/conversions/events"))["items"]
    assert [(m["event"], m["duplicate_mode"]) for m in modes] == [
        ("purchase", "replace"), ("renewal", "count")
    ]  # fmt: skip
    problem(api.call("PUT", "/v1/conversions/events/x", json={"duplicate_mode": "twice"}), 422)
    problem(api.call("PUT", "/v1/conversions/events/a%20b", json={"duplicate_mode": "count"}),
            422, "event")  # fmt: skip


def test_structural_errors_refuse_the_whole_request(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    many = {"conversions": [{"click_id": cid, "txn": str(i)} for i in range(1001)]}
    answers = api.calls([
        ("POST", "/v1/conversions", {"content": b"{nope", "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/conversions", {"json": {"conversions": []}}),
        ("POST", "/v1/conversions", {"json": {"conversions": {"click_id": cid}}}),
        ("POST", "/v1/conversions", {"json": {"conversions": [{"click_id": cid}], "x": 1}}),
        ("POST", "/v1/conversions", {"json": many}),
        ("POST", "/v1/conversions", {"json": [1, 2]}),
        ("POST", "/v1/conversions", {"json": {"click_id": "nope", "event": "a"}}),
        ("POST", "/v1/conversions", {"json": {"click_id": cid, "value": "1"}}),
        ("POST", "/v1/conversions", {"content": b"[" * 100 + b"]" * 100,
                                     "headers": {"content-type": "application/json"}}),
    ])  # fmt: skip
    assert problem(answers[0], 422, "body")
    assert problem(answers[1], 422, "conversions")
    assert problem(answers[2], 422, "conversions")
    assert problem(answers[3], 422, "x")
    assert "at most 1000" in problem(answers[4], 422, "conversions")["detail"]
    assert problem(answers[5], 422, "body")
    assert problem(answers[6], 422, "click_id")["code"] == "unknown_click"
    assert problem(answers[7], 422, "currency")["code"] == "invalid_input"
    assert problem(answers[8], 422, "body")
    assert ok(api.call("GET", "/v1/conversions"))["items"] == []  # nothing half-written


def test_another_workspaces_clicks_and_conversions_are_unknown(api: Api, tmp_path: Path) -> None:
    make_world(api, tmp_path)
    _ws, b_key, b = other_workspace(api, tmp_path)
    (b_cid,) = b.clicks(1)
    mine = problem(api.call("POST", "/v1/conversions", json={"click_id": b_cid}), 422)
    assert mine["code"] == "unknown_click"
    unknown = problem(api.call("POST", "/v1/conversions", json={"click_id": "x" * 16}), 422)
    assert {k: v for k, v in mine.items() if k != "detail"} == {
        k: v for k, v in unknown.items() if k != "detail"
    }
    theirs = ok(api.call("POST", "/v1/conversions", json={"click_id": b_cid}, key=b_key), 201)
    problem(api.call("GET", f"/v1/conversions/{theirs['conversion']['id']}"), 404)
    assert ok(api.call("GET", "/v1/conversions"))["items"] == []
    problem(api.call("POST", "/v1/conversions", json={"contact": {"external_id": "ext-50"}}), 422)


def test_listing_pages_and_filters(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    items = [{"click_id": cid, "txn": f"t{i}", "event": "a" if i % 2 else "b",
              "occurred_at": f"2026-01-0{i + 1}T00:00:00Z"} for i in range(5)]  # fmt: skip
    ok(api.call("POST", "/v1/conversions", json={"conversions": items}))
    first = ok(api.call("GET", "/v1/conversions", params={"limit": 2}))
    second = ok(
        api.call("GET", "/v1/conversions", params={"limit": 2, "cursor": first["next_cursor"]})
    )
    third = ok(
        api.call("GET", "/v1/conversions", params={"limit": 2, "cursor": second["next_cursor"]})
    )
    assert [x["txn"] for x in first["items"] + second["items"] + third["items"]] == [
        "t0", "t1", "t2", "t3", "t4"
    ]  # fmt: skip
    assert third["next_cursor"] is None
    assert [
        x["txn"] for x in ok(api.call("GET", "/v1/conversions", params={"event": "A"}))["items"]
    ] == ["t1", "t3"]
    since = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-04T00:00:00Z"}
    assert [x["txn"] for x in ok(api.call("GET", "/v1/conversions", params=since))["items"]] == [
        "t1",
        "t2",
    ]
    by_campaign = ok(api.call("GET", "/v1/conversions", params={"campaign": w.campaign.slug}))
    assert len(by_campaign["items"]) == 5
    problem(api.call("GET", "/v1/conversions", params={"campaign": "nope"}), 404)
    problem(api.call("GET", "/v1/conversions", params={"source": "fax"}), 422, "source")
    problem(api.call("GET", "/v1/conversions", params={"cursor": "garbage"}), 422, "cursor")


def test_clicks_still_in_the_inbox_resolve_for_their_workspace_only(
    api: Api, tmp_path: Path
) -> None:
    """The inbox lookup on its own, with clicks written as the redirect's click log writes them
    and no jobs thread to move them (storage/conversions.py `clicks_in_inbox`)."""
    w = make_world(api, tmp_path)
    _ws, _key, b = other_workspace(api, tmp_path)
    engine = api.container.engine
    with engine.connect() as conn:
        (mine,) = conn.execute(
            sa.select(t.tokens.c.link_id, t.tokens.c.message_id, t.tokens.c.contact_id)
            .where(t.tokens.c.token == w.tokens[0])
        ).all()  # fmt: skip
        (theirs,) = conn.execute(
            sa.select(t.tokens.c.link_id, t.tokens.c.message_id, t.tokens.c.contact_id)
            .where(t.tokens.c.token == b.tokens[0])
        ).all()  # fmt: skip
    at = now_us()
    cid, other_cid = new_click_id(), new_click_id()
    lines = [
        orjson.dumps([cid, w.tokens[0], w.campaign.id, *mine, at, "GET", "198.51.100.7", "UA", {}]),
        orjson.dumps([other_cid, b.tokens[0], b.campaign.id, *theirs, at, "GET", None, None, {}]),
    ]
    writer = InboxWriter(engine)
    writer(lines)
    writer.close()
    queries = ConversionQueries(engine)
    assert queries.clicks_by_id(api.ws.id, [cid, other_cid]) == {}
    found = queries.clicks_in_inbox(api.ws.id, [cid, other_cid, "A_b%cdefghijklmno"])
    assert found == {cid: ClickRef(cid, mine[2], mine[1], w.campaign.id, mine[0], at)}
    out = ok(api.call("POST", "/v1/conversions", json={"click_id": cid}), 201)["conversion"]
    assert (out["campaign"], out["contact"], out["link"]) == (w.campaign.slug, "ext-0", 1)
