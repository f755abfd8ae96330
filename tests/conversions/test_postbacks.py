"""Affiliate postbacks (GET /postback) and postback secrets through the whole app on SQLite
and PostgreSQL: TUNE- and Everflow-shaped calls, dedup, every refusal a 4xx problem and a row
of the rejected log (secrets masked), unknown and other workspaces' clicks alike, bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from conversion_world import click, make_world, other_workspace, settle

from clicktrail.services.conversions import Rejection
from clicktrail.storage.conversions import ConversionQueries
from inprocess_api import Api, ok, problem


def secret(api: Api, name: str = "everflow", **extra: Any) -> str:
    made = ok(api.call("POST", "/v1/postback-secrets", json={"name": name, **extra}), 201)
    assert made["secret"].startswith("pbs_") and made["prefix"] == made["secret"][:16]
    return str(made["secret"])


def postback(**params: str) -> str:
    return "/postback?" + urlencode(params)


def rejected(api: Api, workspace_id: int | None) -> list[Rejection]:
    return ConversionQueries(api.container.engine).rejections_page(workspace_id, None, 100)


def test_tune_and_everflow_postbacks_count_once(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    pbs = secret(api, default_currency="USD")
    cid, cid2 = w.clicks(2)
    # TUNE: cid={aff_sub}&payout={payout}&event={goal_id}&txn={transaction_id}
    tune = postback(cid=cid, payout="4.50", event="2", txn="102f4a", secret=pbs)
    # Everflow: cid={sub1}&payout={payout_amount}&txn={transaction_id}&event={event_name}, with
    # a sub id it did not fill and one it did.
    everflow = postback(cid=cid2, payout="12", currency="EUR", txn="ef-9", event="{event_name}",
                        sub2="{sub2}", sub3="spring", secret=pbs)  # fmt: skip
    first, again, ef = (ok(r) for r in api.calls(
        [("GET", tune, {"key": None}), ("GET", tune, {"key": None}), ("GET", everflow, {"key": None})]
    ))  # fmt: skip
    assert first["outcome"] == "accepted" and again == {"outcome": "duplicate", "id": first["id"]}
    assert ef["outcome"] == "accepted"
    items = ok(api.call("GET", "/v1/conversions", params={"source": "postback"}))["items"]
    assert [(x["event"], x["value"], x["currency"], x["txn"], x["metadata"]) for x in items] == [
        ("2", "4.5", "USD", "102f4a", None),
        ("conversion", "12", "EUR", "ef-9", {"sub3": "spring"}),
    ]
    assert items[0]["campaign"] == w.campaign.slug and items[0]["click_id"] == cid


def test_every_refusal_is_a_problem_and_a_row_of_the_rejected_log(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    _ws, _b_key, b = other_workspace(api, tmp_path)
    pbs = secret(api)
    (cid,) = w.clicks(1)
    (b_cid,) = b.clicks(1)
    calls = [
        postback(cid=cid, secret="pbs_" + "x" * 44),  # unknown secret
        postback(cid=cid),  # no secret
        postback(cid="AAAAAAAAAAAAAAAA", secret=pbs),  # unknown click
        postback(cid=b_cid, secret=pbs),  # another workspace's click
        postback(cid="{aff_sub}", secret=pbs),  # the network did not fill its macro
        postback(cid=cid, payout="5", secret=pbs),  # no currency, none by default
        postback(cid=cid, secret=pbs) + "&cid=" + cid,  # twice
        postback(cid=cid, event="a b", secret=pbs),
        postback(cid=cid, secret=pbs, pad="x" * 2100),  # over 2,048 bytes
        postback(cid=cid, time=str(2_000_000_000), secret=pbs),  # in the future
    ]
    answers = api.calls([("GET", p, {"key": None}) for p in calls])
    assert problem(answers[0], 401, "secret")["code"] == "unauthorized"
    assert problem(answers[1], 401, "secret")["code"] == "unauthorized"
    unknown, theirs = problem(answers[2], 422, "cid"), problem(answers[3], 422, "cid")
    assert unknown["code"] == theirs["code"] == "unknown_click"
    assert unknown["detail"].replace("AAAAAAAAAAAAAAAA", b_cid) == theirs["detail"]
    assert "did not fill" in problem(answers[4], 422, "cid")["detail"]
    assert problem(answers[5], 422, "currency")
    assert problem(answers[6], 422, "cid")
    assert problem(answers[7], 422, "event")
    assert problem(answers[8], 422, "query")
    assert problem(answers[9], 422, "time")
    assert ok(api.call("GET", "/v1/conversions"))["items"] == []  # nothing written
    log = ok(api.call("GET", "/v1/conversions/rejected"))["items"]
    assert [(r["reason"], r["field"]) for r in log] == [
        ("invalid", "time"), ("invalid", "query"), ("invalid", "event"), ("invalid", "cid"),
        ("invalid", "currency"), ("invalid", "cid"), ("unknown_click", "cid"),
        ("unknown_click", "cid"),
    ]  # fmt: skip
    assert all(r["source"] == "postback" and r["ip"] == "203.0.113.5" for r in log)
    assert pbs not in str(log) and "secret=***" in log[-1]["query"]
    assert len(log[1]["query"]) == 2048
    anonymous = rejected(api, None)
    assert [(r.reason, r.field) for r in anonymous] == [
        ("unauthorized", "secret"), ("unauthorized", "secret")
    ]  # fmt: skip
    assert "x" * 44 not in anonymous[1].query


def test_the_field_names_the_parameter_the_network_sent(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    pbs = secret(api)
    (cid,) = w.clicks(1)
    r = api.call("GET", postback(click_id=cid, amount="1", secret=pbs), key=None)
    assert problem(r, 422, "currency")


def test_revoked_secrets_and_browser_only_keys_are_refused(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    (cid,) = w.clicks(1)
    pbs = secret(api, name="tune")
    made = ok(api.call("POST", "/v1/publishable-keys", json={"name": "site"}), 201)
    (listed,) = ok(api.call("GET", "/v1/postback-secrets"))["items"]
    assert listed["state"] == "active" and "secret" not in listed
    answers = api.calls([
        ("GET", postback(cid=cid, secret=made["secret"]), {"key": None}),  # a publishable key
        ("DELETE", f"/v1/postback-secrets/{listed['id']}", {}),
        ("GET", postback(cid=cid, secret=pbs), {"key": None}),
        ("DELETE", "/v1/postback-secrets/pbk_nope", {}),
    ])  # fmt: skip
    assert problem(answers[0], 401, "secret")
    assert ok(answers[1])["state"] == "revoked"
    assert problem(answers[2], 401, "secret")
    problem(answers[3], 404)
    problem(
        api.call("POST", "/v1/postback-secrets", json={"name": "x", "default_currency": "EURO"}),
        422,
    )


def test_a_click_moments_old_is_found_by_a_postback(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    pbs = secret(api)

    async def use(c: httpx.AsyncClient) -> httpx.Response:
        cid = await click(c, w.tokens[0])
        await settle(api, cid)
        return await c.get(postback(cid=cid, txn="fast", secret=pbs))

    assert ok(w.run(use))["outcome"] == "accepted"


def test_the_rejected_log_keeps_the_newest_rows(api: Api) -> None:
    log = ConversionQueries(api.container.engine, rejected_kept=3)
    for i in range(5):
        log.record_rejection(Rejection(api.ws.id, i, "postback", "x", None, f"r{i}", "", None))
        log.record_rejection(Rejection(None, i, "pixel", "x", None, f"n{i}", "", None))
    assert [r.detail for r in log.rejections_page(api.ws.id, None, 10)] == ["r4", "r3", "r2"]
    assert [r.detail for r in log.rejections_page(None, None, 10)] == ["n4", "n3", "n2"]
    first = ok(api.call("GET", "/v1/conversions/rejected", params={"limit": 2}))
    rest = ok(api.call("GET", "/v1/conversions/rejected",
                       params={"limit": 2, "cursor": first["next_cursor"]}))  # fmt: skip
    assert [r["detail"] for r in first["items"] + rest["items"]] == ["r4", "r3", "r2"]


def test_nul_bytes_are_refused_and_logged_readably(api: Api, tmp_path: Path) -> None:
    w = make_world(api, tmp_path)
    pbs = secret(api)
    (cid,) = w.clicks(1)
    r = api.call("GET", postback(cid=cid, secret=pbs) + "&a%00b=1", key=None)
    assert problem(r, 422)["field"] == "a\x00b"
    (row,) = ok(api.call("GET", "/v1/conversions/rejected"))["items"]
    assert row["field"] == "a\\0b" and "\x00" not in row["detail"]
