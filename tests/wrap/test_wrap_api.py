"""POST /v1/wrap and /v1/wrap/batch through the whole app on SQLite and PostgreSQL: wrapped
texts, links that redirect, receipts that make the report, idempotency, all-or-nothing errors
naming the item and field, and campaigns clicktrail sends itself kept apart."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from clicktrail.storage import tables
from factories import Repos, make_campaign, make_contacts, phone, send
from inprocess_api import HOST, Api, ok, problem

SPEC = {"name": "Order updates", "slug": "orders"}


def counts(api: Api) -> tuple[int, int, int]:
    """(contacts, messages, tokens) in the database."""
    with api.container.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (tables.contacts, tables.messages, tables.tokens)
        )


def wrap_one(api: Api, **body: Any) -> Any:
    return ok(api.call("POST", "/v1/wrap", json={"campaign": SPEC, **body}))


# -- one message --------------------------------------------------------------------------------


def test_wrap_replaces_each_url_and_keeps_the_rest_byte_for_byte(api: Api) -> None:
    text = "Hi {name}! Order 42 shipped: https://shop.example.com/o/42?x=1 — help: https://help.example.com"
    out = wrap_one(api, to="+14155550100", text=text, client_ref="o42-shipped")
    assert out["created"] is True and out["opted_out"] is False
    assert out["campaign_slug"] == "orders" and out["campaign"].startswith("cmp_")
    assert out["message_id"].startswith("msg_") and out["status"] == "queued"
    links = out["links"]
    assert [lk["link"] for lk in links] == [1, 2]
    assert [lk["destination"] for lk in links] == [
        "https://shop.example.com/o/42?x=1",
        "https://help.example.com",
    ]
    for lk in links:
        assert lk["short_url"] == f"https://{HOST}/c/{lk['token']}"
    expected = (
        f"Hi {{name}}! Order 42 shipped: {links[0]['short_url']} — help: {links[1]['short_url']}"
    )
    assert out["text"] == expected
    # "—" is not GSM-7: the whole message is UCS-2, and the count is the final text's.
    assert out["encoding"] == "UCS-2" and out["segments"] == 2
    message = ok(api.call("GET", f"/v1/messages/{out['message_id']}"))
    assert message["body"] == expected and message["status"] == "queued"
    assert message["provider"] == "external" and message["to"] == "+14155550100"
    campaign = ok(api.call("GET", "/v1/campaigns/orders"))
    assert campaign["status"] == "external"
    contact = ok(api.call("GET", "/v1/contacts/%2B14155550100"))
    assert contact["opted_out"] is False


def test_wrapped_links_redirect_and_receipts_make_the_report(api: Api) -> None:
    a = wrap_one(api, to="+14155550100", text="Sale: https://shop.example.com/sale")
    b = wrap_one(api, to="+14155550101", text="Sale: https://shop.example.com/sale")
    before = ok(api.call("GET", "/v1/campaigns/orders/report"))
    assert before["messages"] == 2 and before["queued"] == 2 and before["delivered"] == 0
    assert before["ctr"] is None
    # The sender sent both; its receipts come to the usual endpoint.
    receipts = [
        {"message_id": a["message_id"], "status": "delivered", "at": "2026-05-28T10:00:00Z"},
        {"message_id": b["message_id"], "status": "delivered", "at": "2026-05-28T10:00:01Z"},
    ]
    assert ok(api.call("POST", "/v1/messages/status", json=receipts))["applied"] == 2
    r1, r2 = api.calls(
        [
            ("GET", f"/c/{a['links'][0]['token']}", {"key": None, "headers": BROWSER}),
            ("GET", f"/c/{b['links'][0]['token']}x", {"key": None, "headers": BROWSER}),
        ]
    )
    assert r1.status_code == 302
    location = urlsplit(r1.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https", "shop.example.com", "/sale",
    )  # fmt: skip
    params = parse_qs(location.query)
    assert params["utm_campaign"] == ["orders"] and params["utm_source"] == ["sms"]
    assert "ct_cid" in params
    assert r2.status_code != 302  # a token that is not one does not redirect
    report = ok(api.call("GET", "/v1/campaigns/orders/report"))
    assert report["sent"] == 2 and report["delivered"] == 2
    assert report["total_clicks"] == 1 and report["unique_clicks"] == 1
    assert report["ctr"] == 0.5


BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Dest": "document",
}


def test_mark_sent_counts_as_sent_at_once(api: Api) -> None:
    out = wrap_one(api, to="+14155550100", text="https://a.example.com", mark_sent=True)
    assert out["status"] == "sent"
    report = ok(api.call("GET", "/v1/campaigns/orders/report"))
    assert report["sent"] == 1 and report["queued"] == 0


def test_same_key_twice_returns_the_same_message_and_tokens(api: Api) -> None:
    body = {"to": "+14155550100", "text": "Track: https://t.example.com/1", "client_ref": "k1"}
    first = wrap_one(api, **body)
    before = counts(api)
    again = wrap_one(api, **body)
    assert again["created"] is False
    assert {k: v for k, v in again.items() if k != "created"} == {
        k: v for k, v in first.items() if k != "created"
    }
    assert counts(api) == before
    # The Idempotency-Key header is the same key.
    r = api.call(
        "POST", "/v1/wrap", headers={"Idempotency-Key": "k1"},
        json={"campaign": "orders", "to": "+14155550100", "text": body["text"]},
    )  # fmt: skip
    assert ok(r)["message_id"] == first["message_id"]
    # Another key is another message for the same recipient in the same campaign.
    other = wrap_one(api, **{**body, "client_ref": "k2"})
    assert other["created"] is True and other["message_id"] != first["message_id"]
    assert ok(api.call("GET", "/v1/campaigns/orders/report"))["messages"] == 2


def test_same_key_with_another_text_is_a_conflict_and_writes_nothing(api: Api) -> None:
    wrap_one(api, to="+14155550100", text="A https://a.example.com", client_ref="k")
    before = counts(api)
    r = api.call(
        "POST", "/v1/wrap/batch",
        json={"campaign": "orders", "items": [
            {"to": "+14155550101", "text": "new https://b.example.com"},
            {"to": "+14155550100", "text": "B https://b.example.com", "client_ref": "k"},
        ]},
    )  # fmt: skip
    body = problem(r, 409, "/items/1/client_ref")
    assert "another text" in body["detail"]
    assert counts(api) == before


def test_idempotency_key_and_client_ref_must_agree(api: Api) -> None:
    r = api.call(
        "POST", "/v1/wrap", headers={"Idempotency-Key": "a"},
        json={"campaign": SPEC, "to": "+14155550100", "text": "x", "client_ref": "b"},
    )  # fmt: skip
    problem(r, 422, "client_ref")


# -- batches ------------------------------------------------------------------------------------


def test_batch_wraps_every_recipient_form_in_request_order(api: Api) -> None:
    known = make_contacts(Repos.on(api.container.engine), api.ws, 1, start=7)[0]  # ext-7, Name7
    r = api.call(
        "POST", "/v1/wrap/batch",
        json={"campaign": SPEC, "region": "US", "items": [
            {"to": "(415) 555-0100", "text": "one https://x.example.com/1"},
            {"to": "+442071838750", "text": "two https://x.example.com/2"},
            {"external_id": "ext-7", "text": "three https://x.example.com/3"},
            {"to": "+14155550199", "external_id": "crm-9", "first_name": "Ann",
             "text": "four"},
        ]},
    )  # fmt: skip
    out = ok(r)
    assert (out["created"], out["existing"], out["opted_out"]) == (4, 0, 0)
    items = out["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert [i["to"] for i in items] == ["+14155550100", "+442071838750", known.phone,
                                        "+14155550199"]  # fmt: skip
    assert items[2]["external_id"] == "ext-7"
    assert items[3]["links"] == [] and items[3]["text"] == "four"
    created = ok(api.call("GET", "/v1/contacts/crm-9"))
    assert created["phone"] == "+14155550199" and created["first_name"] == "Ann"
    # The campaign's link 1 is the first link of each text; each token leads to its own URL.
    campaign = ok(api.call("GET", "/v1/campaigns/orders"))
    assert [(lk["link"], lk["url"]) for lk in campaign["links"]] == [(1, "https://x.example.com/1")]
    dests = [i["links"][0]["destination"] for i in items[:3]]
    assert dests == [f"https://x.example.com/{n}" for n in (1, 2, 3)]


def test_batch_errors_name_each_item_and_nothing_is_written(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    before = counts(api)
    r = api.call(
        "POST", "/v1/wrap/batch",
        json={"campaign": SPEC, "items": [
            {"to": "+14155550150", "text": "fine https://a.example.com"},
            {"to": "+1415555", "text": "short number"},
            {"text": "nobody"},
            {"to": "4155550151", "text": "national without region"},
            {"external_id": "nobody-has-this", "text": "x"},
            {"to": "+14155550152", "text": "   "},
        ]},
    )  # fmt: skip
    body = problem(r, 422)
    fields = [e["field"] for e in body["errors"]]
    assert fields == ["/items/1/to", "/items/2/to", "/items/3/to", "/items/4/external_id",
                      "/items/5/text"]  # fmt: skip
    assert "no country code" in body["errors"][2]["message"]
    assert body["field"] == "/items/1/to"
    assert counts(api) == before
    assert api.call("GET", "/v1/campaigns/orders").status_code == 404  # not even the campaign


def test_batch_body_errors_are_json_pointers(api: Api) -> None:
    r = api.call(
        "POST", "/v1/wrap/batch",
        json={"campaign": "orders", "items": [{"to": "+14155550100"}, {"to": 5, "text": "x"},
                                              {"txt": "typo"}]},
    )  # fmt: skip
    fields = {e["field"] for e in problem(r, 422)["errors"]}
    assert "/items/1/to" in fields and "/items/2/txt" in fields
    problem(api.call("POST", "/v1/wrap/batch", json={"campaign": "orders", "items": []}), 422)


def test_the_same_recipient_twice_in_one_batch(api: Api) -> None:
    same = {"to": "+14155550100", "text": "https://a.example.com", "client_ref": "r"}
    out = ok(api.call("POST", "/v1/wrap/batch", json={"campaign": SPEC, "items": [same, same]}))
    assert out["created"] == 1 and out["existing"] == 1
    assert out["items"][0]["message_id"] == out["items"][1]["message_id"]
    assert [i["index"] for i in out["items"]] == [0, 1]
    clash = [same, {**same, "text": "other https://a.example.com"}]
    r = api.call("POST", "/v1/wrap/batch", json={"campaign": SPEC, "items": clash})
    problem(r, 422, "/items/1/client_ref")
    # A new recipient with two keys in one batch: one contact, two messages.
    two = [{"to": "+14155550111", "text": "a", "client_ref": "1"},
           {"to": "+14155550111", "text": "b", "client_ref": "2"}]  # fmt: skip
    before = counts(api)
    out = ok(api.call("POST", "/v1/wrap/batch", json={"campaign": SPEC, "items": two}))
    assert out["created"] == 2 and out["items"][0]["message_id"] != out["items"][1]["message_id"]
    assert counts(api)[:2] == (before[0] + 1, before[1] + 2)


def test_opted_out_recipients_get_no_message(api: Api) -> None:
    store = Repos.on(api.container.engine)
    c = make_contacts(store, api.ws, 2)
    ok(api.call("POST", "/v1/opt-outs", json={"items": [{"contact": c[0].phone,
                                                        "opted_out": True}]}))  # fmt: skip
    out = ok(
        api.call(
            "POST", "/v1/wrap/batch",
            json={"campaign": SPEC, "items": [{"to": c[0].phone, "text": "x"},
                                              {"external_id": "ext-1", "text": "y"}]},
        )
    )  # fmt: skip
    assert out["opted_out"] == 1 and out["created"] == 1
    skipped = out["items"][0]
    assert skipped["opted_out"] is True and skipped["message_id"] is None
    assert skipped["text"] is None and skipped["links"] == []
    assert ok(api.call("GET", "/v1/campaigns/orders/report"))["messages"] == 1


# -- campaigns ----------------------------------------------------------------------------------


def test_an_existing_campaign_gives_its_template_and_link_roles(api: Api) -> None:
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 1)  # +14155550000, Name0
    make_campaign(
        store, api.ws, "Hi {first_name}: https://shop.example.com/bf Stop: https://x.example.com/o",
        slug="bf", link_roles={1: "optout"},
    )  # fmt: skip
    templated = ok(api.call("POST", "/v1/wrap", json={"campaign": "bf", "to": phone(0)}))
    assert templated["text"].startswith("Hi Name0: https://sms.example.com/c/")
    assert [lk["destination"] for lk in templated["links"]] == [
        "https://shop.example.com/bf", "https://x.example.com/o",
    ]  # fmt: skip
    own = ok(
        api.call(
            "POST", "/v1/wrap",
            json={"campaign": "bf", "to": phone(0), "client_ref": "2",
                  "text": "Yours: https://shop.example.com/p/9 stop https://x.example.com/o "
                          "more https://more.example.com"},
        )
    )  # fmt: skip
    assert [lk["destination"] for lk in own["links"]] == [
        "https://shop.example.com/p/9", "https://x.example.com/o", "https://more.example.com",
    ]  # fmt: skip
    links = ok(api.call("GET", "/v1/campaigns/bf"))["links"]
    assert [(lk["link"], lk["role"]) for lk in links] == [(1, "cta"), (2, "optout"), (3, "cta")]
    # A token at the opt-out position counts as an opt-out click in the full report.
    api.call("GET", f"/c/{own['links'][1]['token']}", key=None, headers=BROWSER)
    full = ok(api.call("GET", "/v1/campaigns/bf/report/full"))
    assert full["optout"]["total_clicks"] == 1 and full["total_clicks"] == 0


def test_a_campaign_clicktrail_sends_cannot_be_wrapped_into(api: Api, tmp_path: Any) -> None:
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 1)
    cp = make_campaign(store, api.ws, slug="newsletter")
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    r = api.call("POST", "/v1/wrap", json={"campaign": "newsletter", "to": phone(5), "text": "x"})
    problem(r, 409, "/campaign")
    problem(api.call("POST", "/v1/wrap", json={"campaign": "nope", "to": phone(5)}), 404,
            "/campaign")  # fmt: skip


def test_a_wrap_only_campaign_is_never_sent_by_clicktrail(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2)
    wrap_one(api, to="+14155550100", text="https://a.example.com")
    problem(api.call("POST", "/v1/campaigns/orders/send"), 409)


def test_a_spec_with_other_options_than_its_campaign_is_a_conflict(api: Api) -> None:
    wrap_one(api, to="+14155550100", text="https://a.example.com")
    r = api.call(
        "POST", "/v1/wrap",
        json={"campaign": {**SPEC, "utm_enabled": False}, "to": "+14155550100", "text": "x"},
    )  # fmt: skip
    problem(r, 409, "/campaign")
    r = api.call(
        "POST", "/v1/wrap",
        json={"campaign": {"name": "New", "domain": "nope.example.com"}, "to": "+14155550100",
              "text": "x"},
    )  # fmt: skip
    problem(r, 404, "/campaign/domain")


def test_a_key_only_sees_its_own_workspace(api: Api) -> None:
    from factories import make_api_key, make_domain, make_workspace

    store = Repos.on(api.container.engine)
    other = make_workspace(store)
    make_domain(store, other, "other.example.com")
    other_key = make_api_key(store, other)
    wrap_one(api, to="+14155550100", text="https://a.example.com")
    r = api.call("POST", "/v1/wrap", key=other_key,
                 json={"campaign": "orders", "to": "+14155550100", "text": "x"})  # fmt: skip
    problem(r, 404)
    problem(api.call("POST", "/v1/wrap", key=None, json={"campaign": "orders"}), 401)


@pytest.mark.slow
def test_ten_thousand_items_in_one_call_and_not_one_more(api: Api) -> None:
    items = [
        {"to": f"+1415{200 + i // 10000:03d}{i % 10000:04d}",
         "text": f"Order {i}: https://shop.example.com/o/{i}", "client_ref": str(i)}
        for i in range(10_000)
    ]  # fmt: skip
    out = ok(api.call("POST", "/v1/wrap/batch", json={"campaign": SPEC, "items": items}))
    assert out["created"] == 10_000 and len({i["message_id"] for i in out["items"]}) == 10_000
    assert counts(api) == (10_000, 10_000, 10_000)
    extra = [*items, {"to": "+14152990000", "text": "one too many"}]
    r = api.call("POST", "/v1/wrap/batch", json={"campaign": SPEC, "items": extra})
    problem(r, 422, "/items")
    assert counts(api) == (10_000, 10_000, 10_000)
