"""Twilio's status callbacks (``POST /v1/webhooks/twilio/status``) through the whole app on
SQLite and PostgreSQL: signatures made with the SDK's validator are accepted, forged ones
refused; statuses move messages forward only; unknown messages are answered 200 and counted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, twilio_signature
from provider_world import TWILIO_OPTIONS, Env, problem

from clicktrail.domain.models import Campaign
from clicktrail.storage import tables
from factories import make_campaign, make_contacts, send

CALLBACK = "https://ct.example.com/v1/webhooks/twilio/status"
PATH = "/v1/webhooks/twilio/status"


def sent_campaign(env: Env, twilio: FakeTwilio, n: int = 2, **options: Any) -> Campaign:
    env.add_provider("tw", "twilio", **{**TWILIO_OPTIONS, "base_url": twilio.url,
                                        "status_callback": CALLBACK, **options})  # fmt: skip
    make_contacts(env.store, env.ws, n)
    cp = make_campaign(env.store, env.ws)
    summary = send(env.store, env.ws, cp, env.tmp / "unused",
                   provider=env.container.provider("tw", workspace=env.ws))  # fmt: skip
    assert summary.sent == n
    return cp


def messages(env: Env, cp: Campaign) -> list[dict[str, Any]]:
    with env.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.messages).where(tables.messages.c.campaign_id == cp.id)
            .order_by(tables.messages.c.id)
        ).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


def callback(env: Env, params: dict[str, str], *, query: str = "", signed_url: str | None = None,
             token: str = AUTH_TOKEN, signature: str | None = None) -> httpx.Response:  # fmt: skip
    """Post a status callback as Twilio would: signed over the URL it called and the form."""
    url = (signed_url or CALLBACK) + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    sig = signature if signature is not None else twilio_signature(url, params, token)
    if sig:
        headers["X-Twilio-Signature"] = sig
    path = PATH + (f"?{query}" if query else "")
    return env.call("POST", path, key=None, content=urlencode(params), headers=headers)


def status_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
        "SmsStatus": status, "To": "+14155550000", "From": "+15005550006", "ApiVersion": "2010-04-01",
        **extra,
    }  # fmt: skip


def test_signed_delivered_callback_moves_the_message(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    first = messages(env, cp)[0]
    r = callback(env, status_form(first["provider_message_id"], "delivered"),
                 query=f"ct={first['public_id']}")  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "applied": 1, "unchanged": 0, "ignored": 0, "unknown": []}
    after = messages(env, cp)
    assert after[0]["status"] == "delivered"
    assert after[0]["delivered_us"] is not None
    assert after[0]["provider"] == "tw"
    assert after[1]["status"] == "sent"
    with env.store.engine.connect() as conn:
        sources = conn.execute(sa.select(tables.message_events.c.source)).scalars().all()
    assert sources == ["webhook:twilio"]


def test_forged_signature_is_refused(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    sid = messages(env, cp)[0]["provider_message_id"]
    r = callback(env, status_form(sid, "delivered"), token="0" * 32)
    problem(r, 403)
    assert messages(env, cp)[0]["status"] == "sent"


def test_signature_over_another_url_is_refused(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    sid = messages(env, cp)[0]["provider_message_id"]
    problem(callback(env, status_form(sid, "delivered"),
                     signed_url="https://evil.example.com/v1/webhooks/twilio/status"), 403)  # fmt: skip
    # The URL as this server saw it is not what Twilio signed either (a callback is configured).
    problem(callback(env, status_form(sid, "delivered"), signed_url=f"http://sms.example.com{PATH}"),
            403)  # fmt: skip
    assert messages(env, cp)[0]["status"] == "sent"


def test_missing_signature_is_refused(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    sid = messages(env, cp)[0]["provider_message_id"]
    body = problem(callback(env, status_form(sid, "delivered"), signature=""), 403)
    assert body["code"] == "forbidden"


def test_tampered_form_is_refused(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    sid = messages(env, cp)[0]["provider_message_id"]
    signature = twilio_signature(CALLBACK, status_form(sid, "undelivered"))
    problem(callback(env, status_form(sid, "delivered"), signature=signature), 403)


def test_callback_naming_another_account_is_refused(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    sid = messages(env, cp)[0]["provider_message_id"]
    form = status_form(sid, "delivered", AccountSid="AC" + "9" * 32)
    problem(callback(env, form), 403)


def test_without_configured_callback_the_received_url_is_checked(
    env: Env, twilio: FakeTwilio
) -> None:
    env.add_provider("tw", "twilio", **TWILIO_OPTIONS, base_url=twilio.url)
    make_contacts(env.store, env.ws, 1)
    cp = make_campaign(env.store, env.ws)
    send(
        env.store,
        env.ws,
        cp,
        env.tmp / "x",
        provider=env.container.provider("tw", workspace=env.ws),
    )
    assert twilio.creates()[0].one("StatusCallback") is None
    sid = messages(env, cp)[0]["provider_message_id"]
    r = callback(env, status_form(sid, "delivered"), signed_url=f"http://sms.example.com{PATH}")
    assert r.status_code == 200, r.text
    assert messages(env, cp)[0]["status"] == "delivered"


def test_unknown_message_is_answered_200_and_counted(env: Env, twilio: FakeTwilio) -> None:
    sent_campaign(env, twilio)
    r = callback(env, status_form("SM" + "e" * 32, "delivered"))
    assert r.status_code == 200, r.text
    assert r.json()["unknown"] == ["SM" + "e" * 32]
    assert r.json()["applied"] == 0
    shown = env.call("GET", "/v1/providers/tw").json()
    assert shown["unknown_receipts"] == 1
    assert shown["last_receipt_at"] is not None


def test_statuses_only_move_forward_and_errors_are_kept(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    a, b = (m["provider_message_id"] for m in messages(env, cp))
    assert callback(env, status_form(a, "delivered")).json()["applied"] == 1
    late = callback(env, status_form(a, "sent")).json()
    assert (late["applied"], late["unchanged"]) == (0, 1)
    failed = callback(env, status_form(a, "undelivered", ErrorCode="30003")).json()
    assert failed["unchanged"] == 1  # the first final status wins
    r = callback(env, status_form(b, "undelivered", ErrorCode="30003",
                                  ErrorMessage="Unreachable destination handset"))  # fmt: skip
    assert r.json()["applied"] == 1
    ma, mb = messages(env, cp)
    assert ma["status"] == "delivered"
    assert ma["error_code"] is None
    assert mb["status"] == "undelivered"
    assert (mb["error_code"], mb["error_message"]) == ("30003", "Unreachable destination handset")


def test_read_counts_as_delivered_and_queued_is_ignored(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio)
    a, b = (m["provider_message_id"] for m in messages(env, cp))
    assert callback(env, status_form(a, "queued")).json() == {
        "received": 1, "applied": 0, "unchanged": 0, "ignored": 1, "unknown": []}  # fmt: skip
    assert callback(env, status_form(b, "read")).json()["applied"] == 1
    assert [m["status"] for m in messages(env, cp)] == ["sent", "delivered"]


def test_carrier_delivery_time_is_used(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio, n=1)
    sid = messages(env, cp)[0]["provider_message_id"]
    callback(env, status_form(sid, "delivered", RawDlrDoneDate="2601151030"))
    # 2026-01-15 10:30 UTC
    assert messages(env, cp)[0]["delivered_us"] == 1_768_473_000_000_000


def test_receipt_finds_a_message_whose_send_answer_was_lost(env: Env, twilio: FakeTwilio) -> None:
    cp = sent_campaign(env, twilio, n=1)
    msg = messages(env, cp)[0]
    with env.store.engine.begin() as conn:  # as if Twilio's answer to the send never arrived
        conn.execute(tables.messages.update().values(provider_message_id=None, status="sending"))
    sid = msg["provider_message_id"]
    r = callback(env, status_form(sid, "delivered"), query=f"ct={msg['public_id']}")
    assert r.json()["applied"] == 1
    after = messages(env, cp)[0]
    assert (after["status"], after["provider_message_id"]) == ("delivered", sid)


def test_receipts_stay_in_the_providers_workspace(env: Env, twilio: FakeTwilio) -> None:
    from factories import make_domain, make_workspace

    cp = sent_campaign(env, twilio, n=1)
    msg = messages(env, cp)[0]
    other = make_workspace(env.store)
    make_domain(env.store, other, "other.example.com")
    from clicktrail.services import providers

    providers.add_provider(
        env.container.provider_repo, env.container.provider_kinds, other, name="tw",
        kind="twilio", options={**TWILIO_OPTIONS, "auth_token": "1" * 32,
                                "status_callback": CALLBACK}, now_us=0,
    )  # fmt: skip
    # Signed with the other workspace's token, naming our message by its id: not found there.
    r = callback(env, status_form("SM" + "a" * 32, "failed"), query=f"ct={msg['public_id']}",
                 token="1" * 32)  # fmt: skip
    assert r.json()["unknown"] == ["SM" + "a" * 32]
    assert messages(env, cp)[0]["status"] == "sent"


def test_auth_token_from_the_environment(
    env: Env, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICKTRAIL_PROVIDER_TEST_TWILIO_TOKEN", AUTH_TOKEN)
    cp = sent_campaign(env, twilio, auth_token="${CLICKTRAIL_PROVIDER_TEST_TWILIO_TOKEN}")
    sid = messages(env, cp)[0]["provider_message_id"]
    assert callback(env, status_form(sid, "delivered")).json()["applied"] == 1
    monkeypatch.delenv("CLICKTRAIL_PROVIDER_TEST_TWILIO_TOKEN")
    # Without the variable the signature cannot be checked: refused, never accepted blindly.
    problem(callback(env, status_form(sid, "delivered")), 403)


def test_authentic_callback_without_status_is_invalid(env: Env, twilio: FakeTwilio) -> None:
    sent_campaign(env, twilio, n=1)
    form = {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "1" * 32}
    problem(callback(env, form), 422, "MessageStatus")
