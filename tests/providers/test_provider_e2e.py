"""End to end on SQLite and PostgreSQL: a Twilio provider configured with the CLI, a campaign
sent with ``clicktrail campaign send --provider`` (a process) through the SDK to a local fake
Twilio, Twilio's signed status callbacks posted to the real server (uvicorn on 127.0.0.1), and
the report counting what was delivered."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, twilio_signature
from provider_world import Env, Served

from clicktrail.storage import tables
from factories import make_campaign, make_contacts

TOKEN_VAR = "CLICKTRAIL_PROVIDER_E2E_TWILIO_TOKEN"


def test_send_through_twilio_then_receipts_then_report(
    env: Env, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VAR, AUTH_TOKEN)  # the server (this process) resolves ${…} too
    make_contacts(env.store, env.ws, 5)
    make_campaign(env.store, env.ws, "Hi {first_name}, 20% off: https://shop.example.com/sale",
                  slug="spring")  # fmt: skip
    with Served(env.container) as server:
        callback = f"{server.url}/v1/webhooks/twilio/status"
        added = env.cli("provider", "add", "tw-main", "--kind", "twilio",
                        "--account-sid", ACCOUNT_SID, "--auth-token", f"${{{TOKEN_VAR}}}",
                        "--from", "+15005550006", "--base-url", twilio.url,
                        "--status-callback", callback)  # fmt: skip
        assert added.returncode == 0, added.stderr
        # Twilio refuses the first number for good: that message fails, keeping Twilio's words.
        twilio.inject(twilio.error(400, 21211, "The 'To' number is not a valid phone number."))
        sent = env.cli("campaign", "send", "spring", "--provider", "tw-main", "--rate", "0",
                       "--json", env={TOKEN_VAR: AUTH_TOKEN})  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert len(twilio.messages) == 4
        creates = twilio.creates()[1:]
        assert all(
            (c.one("StatusCallback") or "").startswith(f"{callback}?ct=msg_") for c in creates
        )

        # Twilio calls each message's StatusCallback URL, signed with the account's token.
        for i, (create, msg) in enumerate(zip(creates, twilio.messages, strict=True)):
            url = create.one("StatusCallback")
            assert url is not None
            for status in ("sent", "undelivered" if i == 3 else "delivered"):
                form = {"AccountSid": ACCOUNT_SID, "MessageSid": msg["sid"],
                        "MessageStatus": status, "To": msg["to"], "From": msg["from"]}  # fmt: skip
                if status == "undelivered":
                    form["ErrorCode"] = "30003"
                r = httpx.post(url, data=form,
                               headers={"X-Twilio-Signature": twilio_signature(url, form)})  # fmt: skip
                assert r.status_code == 200, r.text
                assert r.json()["unknown"] == []
        forged = httpx.post(callback, data={"AccountSid": ACCOUNT_SID, "MessageSid": "SMx",
                                            "MessageStatus": "delivered"},
                            headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})  # fmt: skip
        assert forged.status_code == 403
        assert forged.headers["content-type"].startswith("application/problem+json")

    report = env.cli("report", "spring", "--json")
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout)
    assert (summary["messages"], summary["delivered"], summary["undelivered"], summary["failed"]) == (
        5, 3, 1, 1)  # fmt: skip
    listed = env.cli("export", "messages", "--campaign", "spring", "--format", "jsonl")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["provider"] for r in rows} == {"tw-main"}
    assert sorted(r["error_code"] or "" for r in rows) == ["", "", "", "21211", "30003"]
    with env.store.engine.connect() as conn:
        words = conn.execute(
            sa.select(tables.messages.c.error_message).where(
                tables.messages.c.error_code == "21211"
            )
        ).scalar_one()
    assert words == "The 'To' number is not a valid phone number."
