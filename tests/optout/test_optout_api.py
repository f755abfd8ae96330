"""Opt-outs through the whole app on SQLite and PostgreSQL: inbound keywords (generic JSON and
Twilio's signed webhook with TwiML answers), manual changes, the history with its sources,
and what opting out does to sends and reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.models import Receipt
from clicktrail.services.ports import ClickRecord
from factories import NOW_US, Repos, make_campaign, make_contacts, phone, send
from inprocess_api import HOST, Api, ok, problem

TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO_URL = f"http://{HOST}/v1/webhooks/twilio/inbound"
A, B = phone(0), phone(1)


def inbound(api: Api, text: str, sender: str = A, **extra: Any) -> Any:
    return ok(api.call("POST", "/v1/inbound", json={"from": sender, "text": text, **extra}))


def history(api: Api, contact: str) -> Any:
    return ok(api.call("GET", f"/v1/contacts/{contact.replace('+', '%2B')}/opt-outs"))


def opted_out(api: Api, contact: str) -> bool:
    found = Repos.on(api.container.engine).contacts.find_contact(api.ws.id, contact)
    assert found is not None
    return found.opted_out


# -- generic inbound ----------------------------------------------------------------------------


def test_stop_start_and_help_through_the_generic_inbound(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    out = inbound(api, "Stop.", to="+18005550000", received_at="2026-05-28T10:00:00Z")
    assert out == {"keyword": "STOP", "action": "opt_out", "applied": True, "opted_out": True,
                   "reply": None}  # fmt: skip
    assert opted_out(api, A)
    again = inbound(api, "STOP", received_at="2026-05-28T10:01:00Z")
    assert again["applied"] is False and again["opted_out"] is True
    back = inbound(api, "unstop", received_at="2026-05-28T10:02:00Z")
    assert back["action"] == "opt_in" and back["applied"] is True and back["opted_out"] is False
    assert not opted_out(api, A)
    ok(api.call("PUT", "/v1/opt-outs/replies",
                json={"help": "Acme alerts. Help: acme.com/help. Reply STOP to stop."}))  # fmt: skip
    help_ = inbound(api, " help ")
    assert help_["action"] == "help" and help_["applied"] is False
    assert help_["reply"] == "Acme alerts. Help: acme.com/help. Reply STOP to stop."
    chat = inbound(api, "Please stop texting me")
    assert chat == {"keyword": None, "action": None, "applied": False, "opted_out": None,
                    "reply": None}  # fmt: skip
    h = history(api, A)
    assert h["opted_out"] is False and h["phone"] == A
    assert [(e["opted_out"], e["source"], e["applied"]) for e in h["events"]] == [
        (False, "keyword:UNSTOP via inbound api", True),
        (True, "keyword:STOP via inbound api", False),
        (True, "keyword:STOP via inbound api", True),
    ]
    assert h["events"][2]["at"] == "2026-05-28T10:00:00.000000Z"
    assert h["events"][2]["to_number"] == "+18005550000"
    assert h["events"][2]["keyword"] == "STOP"


def test_stop_from_an_unknown_number_creates_an_opted_out_contact(api: Api) -> None:
    out = inbound(api, "QUIT", sender="+14155550177")
    assert out["applied"] is True and out["opted_out"] is True
    contact = ok(api.call("GET", "/v1/contacts/%2B14155550177"))
    assert contact["opted_out"] is True
    # START from a number never seen has nobody to opt in, and creates nobody.
    start = inbound(api, "START", sender="+14155550178")
    assert start["applied"] is False and start["opted_out"] is None
    problem(api.call("GET", "/v1/contacts/%2B14155550178"), 404)


def test_the_latest_event_wins_whatever_order_they_arrive_in(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    inbound(api, "START", received_at="2026-05-28T12:00:00Z")  # not opted out: not applied
    inbound(api, "STOP", received_at="2026-05-28T12:05:00Z")
    late = inbound(api, "START", received_at="2026-05-28T12:01:00Z")  # older than the STOP
    assert late["applied"] is False and late["opted_out"] is True
    assert opted_out(api, A)


def test_inbound_errors(api: Api) -> None:
    problem(api.call("POST", "/v1/inbound", json={"from": "nope", "text": "STOP"}), 422, "from")
    problem(api.call("POST", "/v1/inbound", json={"text": "STOP"}), 422, "/from")
    r = api.call("POST", "/v1/inbound", json={"from": A, "text": "STOP", "received_at": "soon"})
    problem(r, 422, "received_at")
    problem(api.call("POST", "/v1/inbound", key=None, json={"from": A, "text": "STOP"}), 401)


# -- Twilio -------------------------------------------------------------------------------------


def add_twilio(api: Api, token: str = TOKEN, name: str = "tw") -> None:
    api.container.provider_repo.add_provider(
        public_id=f"prv_{name}", workspace_id=api.ws.id, name=name, kind="twilio",
        settings={"account_sid": "AC" + "0" * 32, "from": "+18005550000"},
        secrets={"auth_token": token}, now_us=NOW_US,
    )  # fmt: skip


def twilio(api: Api, body: str, *, token: str = TOKEN, url: str = TWILIO_URL,
           sent: dict[str, str] | None = None, signature: str | None = None) -> Any:  # fmt: skip
    params = {"AccountSid": "AC" + "0" * 32, "MessageSid": "SM" + "1" * 32, "From": A,
              "To": "+18005550000", "Body": body, "NumMedia": "0"}  # fmt: skip
    sig = RequestValidator(token).compute_signature(url, params)
    return api.call(
        "POST", "/v1/webhooks/twilio/inbound", key=None,
        content=urlencode(sent if sent is not None else params),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": sig if signature is None else signature},
    )  # fmt: skip


def test_twilio_stop_with_a_valid_signature_opts_out(api: Api) -> None:
    add_twilio(api)
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    r = twilio(api, "STOP")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    assert r.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert opted_out(api, A)
    event = history(api, A)["events"][0]
    assert event["source"] == "keyword:STOP via twilio inbound"
    assert event["to_number"] == "+18005550000" and event["applied"] is True


def test_twilio_replies_in_twiml_when_the_workspace_has_replies(api: Api) -> None:
    add_twilio(api)
    ok(api.call("PUT", "/v1/opt-outs/replies", json={
        "help": "Acme <alerts> & more: reply STOP to stop.",
        "opt_out": "You are unsubscribed. Reply START to resubscribe.", "opt_in": ""}))  # fmt: skip
    r = twilio(api, "help")
    assert r.status_code == 200
    assert r.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme &lt;alerts&gt; &amp; '
        "more: reply STOP to stop.</Message></Response>"
    )
    assert "You are unsubscribed" in twilio(api, "cancel").text
    assert twilio(api, "start").text.endswith("<Response />")  # '' means no reply
    assert twilio(api, "Where is my order?").text.endswith("<Response />")


def test_twilio_behind_a_tls_terminator(api: Api) -> None:
    # Twilio called (and signed) https://…; the server behind the proxy sees http://….
    add_twilio(api)
    r = twilio(api, "STOP", url=TWILIO_URL.replace("http://", "https://"))
    assert r.status_code == 200, r.text
    assert opted_out(api, A)


@pytest.mark.parametrize("forgery", ["other token", "tampered body", "other url", "no signature",
                                     "garbage"])  # fmt: skip
def test_twilio_forged_requests_are_refused_and_change_nothing(api: Api, forgery: str) -> None:
    add_twilio(api)
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    signed = {"AccountSid": "AC" + "0" * 32, "MessageSid": "SM" + "1" * 32, "From": A,
              "To": "+18005550000", "Body": "START", "NumMedia": "0"}  # fmt: skip
    kwargs: dict[str, Any] = {
        "other token": {"token": "f" * 32},
        "tampered body": {"sent": {**signed, "Body": "STOP"}},
        "other url": {"url": TWILIO_URL + "?workspace=x"},
        "no signature": {"signature": ""},
        "garbage": {"signature": "bm90IGEgc2lnbmF0dXJl"},
    }[forgery]
    r = twilio(api, "STOP" if forgery != "tampered body" else "START", **kwargs)
    problem(r, 403, "X-Twilio-Signature")
    assert not opted_out(api, A)
    assert history(api, A)["events"] == []


def test_twilio_without_a_configured_account_is_refused(api: Api) -> None:
    problem(twilio(api, "STOP"), 403)


def test_twilio_reaches_every_workspace_with_that_account(api: Api) -> None:
    from factories import make_workspace

    add_twilio(api, name="tw")
    make_contacts(Repos.on(api.container.engine), api.ws, 1)
    other = make_workspace(Repos.on(api.container.engine))
    api.container.provider_repo.add_provider(
        public_id="prv_other", workspace_id=other.id, name="tw2", kind="twilio",
        settings={"account_sid": "AC" + "9" * 32}, secrets={"auth_token": "e" * 32},
        now_us=NOW_US,
    )  # fmt: skip
    assert twilio(api, "STOP").status_code == 200
    assert opted_out(api, A)
    assert (
        Repos.on(api.container.engine).contacts.find_contact(other.id, A) is None
    )  # not its account


# -- manual changes -----------------------------------------------------------------------------


def test_manual_opt_outs_and_ins_all_or_nothing(api: Api) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 2)
    r = api.call("POST", "/v1/opt-outs", json={"items": [
        {"contact": "ext-0", "opted_out": True, "note": "asked on the phone"},
        {"contact": "+14155550190", "opted_out": True, "at": "2026-05-01T00:00:00Z"},
        {"contact": B, "opted_out": False},
    ]})  # fmt: skip
    out = ok(r)["items"]
    assert [(x["phone"], x["applied"], x["opted_out"], x["created"]) for x in out] == [
        (A, True, True, False), ("+14155550190", True, True, True), (B, False, False, False),
    ]  # fmt: skip
    event = history(api, "ext-0")["events"][0]
    assert (event["source"], event["note"]) == ("api", "asked on the phone")
    assert history(api, "+14155550190")["events"][0]["at"] == "2026-05-01T00:00:00.000000Z"
    before = history(api, B)["events"]
    bad = api.call("POST", "/v1/opt-outs", json={"items": [
        {"contact": B, "opted_out": True},
        {"contact": "nobody", "opted_out": True},
        {"contact": "+14155550191", "opted_out": False},
    ]})  # fmt: skip
    body = problem(bad, 422)
    assert [e["field"] for e in body["errors"]] == ["/items/1/contact", "/items/2/contact"]
    assert history(api, B)["events"] == before and not opted_out(api, B)
    problem(api.call("GET", "/v1/contacts/nobody/opt-outs"), 404, "contact")


# -- what opting out does -----------------------------------------------------------------------


def test_a_contact_opted_out_by_keyword_is_left_out_of_the_next_send(
    api: Api, tmp_path: Path
) -> None:
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 3)
    inbound(api, "STOP", sender=B)
    outbox = tmp_path / "outbox.jsonl"
    cp = make_campaign(store, api.ws, slug="next")
    summary = send(store, api.ws, cp, outbox)
    sent_to = [json.loads(line)["to"] for line in outbox.read_text().splitlines()]
    assert sorted(sent_to) == [phone(0), phone(2)]
    assert summary.sent == 2
    assert ok(api.call("GET", "/v1/campaigns/next/report"))["messages"] == 2
    # Opted back in, the contact is in the following send.
    inbound(api, "START", sender=B)
    outbox2 = tmp_path / "outbox2.jsonl"
    send(store, api.ws, make_campaign(store, api.ws, slug="after"), outbox2)
    assert B in [json.loads(line)["to"] for line in outbox2.read_text().splitlines()]


def test_an_opt_out_leaves_past_messages_and_clicks_in_reports(api: Api, tmp_path: Path) -> None:
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 2)
    cp = make_campaign(store, api.ws, slug="past")
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    ids = store.messages.queued_or_sent_ids(cp.id, 10)
    store.messages.apply_receipts(
        api.ws.id, [Receipt(m, "delivered", NOW_US + 1_000_000) for m in ids],
        skip_unknown=False, source="test", now_us=NOW_US,
    )  # fmt: skip
    token, to, _ = store.messages.sample_links(cp.id, 10)[0]  # link 1 of the first message
    contact = store.contacts.find_contact(api.ws.id, to)
    assert contact is not None
    human = Verdict("human", 0, ())
    store.clicks.insert_clicks(
        [ClickRecord("click-1", token, cp.id, cp.links[0].id, _message_id(api, token),
                     contact.id, NOW_US + 60_000_000, "GET", "203.0.113.9", UA, {})],
        [human],
    )  # fmt: skip
    store.clicks.save_verdicts([("click-1", human, True)])  # final: no background job re-judges it
    report = ("GET", "/v1/campaigns/past/report", {})
    stop = ("POST", "/v1/inbound", {"json": {"from": to, "text": "STOP"}})
    before, stopped, after = api.calls([report, stop, report])
    assert ok(stopped)["applied"] is True
    assert ok(before)["delivered"] == 2 and ok(before)["unique_clicks"] == 1
    assert ok(after) == ok(before)
    assert ok(api.call("GET", "/v1/campaigns/past/report")) == ok(before)


UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"


def _message_id(api: Api, token: str) -> int:
    import sqlalchemy as sa

    from clicktrail.storage import tables

    with api.container.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(tables.tokens.c.message_id).where(tables.tokens.c.token == token)
            ).scalar_one()
        )
