"""Receipts of HTTP providers (``POST /v1/webhooks/http/{provider_name}/status``) on SQLite and
PostgreSQL: the Vonage and Plivo presets' receipts move messages sent through them; a missing or
wrong token, or a bad HMAC, is refused; secrets come from the environment when referenced."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from provider_fakes import Answer, FakeApi, plivo_answer, vonage_answer
from provider_world import Env, problem

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign
from clicktrail.storage import tables
from factories import make_campaign, make_contacts, send

PUBLIC = "https://ct.example.com"


@pytest.fixture
def vonage_api() -> Iterator[FakeApi]:
    with FakeApi(vonage_answer) as fake:
        yield fake


@pytest.fixture
def plivo_api() -> Iterator[FakeApi]:
    with FakeApi(plivo_answer) as fake:
        yield fake


def send_through(env: Env, name: str, n: int = 2) -> Campaign:
    make_contacts(env.store, env.ws, n)
    cp = make_campaign(env.store, env.ws)
    summary = send(env.store, env.ws, cp, env.tmp / "unused",
                   provider=env.container.provider(name, workspace=env.ws))  # fmt: skip
    assert summary.sent == n
    return cp


def messages(env: Env, cp: Campaign) -> list[dict[str, Any]]:
    with env.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.messages).where(tables.messages.c.campaign_id == cp.id)
            .order_by(tables.messages.c.id)
        ).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


def add_vonage(env: Env, api: FakeApi) -> None:
    env.add_provider("vg", "http", preset="vonage", base_url=api.url, public_url=PUBLIC, params={
        "api_key": "abcd1234", "api_secret": "${CLICKTRAIL_PROVIDER_TEST_VONAGE_SECRET}", "from": "Acme",
        "receipt_token": "${CLICKTRAIL_PROVIDER_TEST_VONAGE_TOKEN}"})  # fmt: skip


@pytest.fixture
def vonage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKTRAIL_PROVIDER_TEST_VONAGE_SECRET", "s3cr3t")
    monkeypatch.setenv("CLICKTRAIL_PROVIDER_TEST_VONAGE_TOKEN", "dlr-token-1")


@pytest.mark.usefixtures("vonage_env")
def test_vonage_receipts_move_messages(env: Env, vonage_api: FakeApi) -> None:
    add_vonage(env, vonage_api)
    cp = send_through(env, "vg")
    assert vonage_api.seen[0].one("api_secret") == "s3cr3t"  # resolved from the environment
    a, b = messages(env, cp)
    assert a["provider"] == "vg"
    dlr = {"msisdn": "14155550000", "to": "Acme", "network-code": "23410",
           "messageId": a["provider_message_id"], "price": "0.03", "status": "delivered",
           "scts": "2601151030", "err-code": "0", "client-ref": a["public_id"],
           "message-timestamp": "2026-01-15 10:30:05"}  # fmt: skip
    path = "/v1/webhooks/http/vg/status?token=dlr-token-1"
    r = env.call("POST", path, key=None, json=dlr)
    assert r.json() == {"received": 1, "applied": 1, "unchanged": 0, "ignored": 0, "unknown": []}
    failed = {**dlr, "messageId": b["provider_message_id"], "status": "failed", "err-code": "6",
              "client-ref": b["public_id"]}  # fmt: skip
    # Vonage can post receipts as a form too.
    r = env.call("POST", path, key=None, content=urlencode(failed),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.json()["applied"] == 1
    ma, mb = messages(env, cp)
    assert (ma["status"], ma["error_code"]) == ("delivered", None)
    assert (mb["status"], mb["error_code"]) == ("failed", "6")
    buffered = {**dlr, "status": "buffered"}
    assert env.call("POST", path, key=None, json=buffered).json()["ignored"] == 1


@pytest.mark.usefixtures("vonage_env")
def test_vonage_receipts_need_the_token(env: Env, vonage_api: FakeApi) -> None:
    add_vonage(env, vonage_api)
    cp = send_through(env, "vg", n=1)
    (m,) = messages(env, cp)
    dlr = {"messageId": m["provider_message_id"], "status": "delivered"}
    for path in ("/v1/webhooks/http/vg/status", "/v1/webhooks/http/vg/status?token=guess",
                 "/v1/webhooks/http/other/status?token=dlr-token-1",
                 "/v1/webhooks/http/BAD%20NAME/status?token=dlr-token-1"):  # fmt: skip
        problem(env.call("POST", path, key=None, json=dlr), 403)
    assert messages(env, cp)[0]["status"] == "sent"


@pytest.mark.usefixtures("vonage_env")
def test_unknown_and_echoed_ids(env: Env, vonage_api: FakeApi) -> None:
    add_vonage(env, vonage_api)
    cp = send_through(env, "vg", n=1)
    (m,) = messages(env, cp)
    path = "/v1/webhooks/http/vg/status?token=dlr-token-1"
    r = env.call("POST", path, key=None, json={"messageId": "NOPE", "status": "delivered"})
    assert r.status_code == 200
    assert r.json()["unknown"] == ["NOPE"]
    assert env.call("GET", "/v1/providers/vg").json()["unknown_receipts"] == 1
    # A message whose send answer was lost is found by the client-ref Vonage echoes back.
    with env.store.engine.begin() as conn:
        conn.execute(tables.messages.update().values(provider_message_id=None))
    r = env.call("POST", path, key=None, json={"messageId": "0B00000123", "status": "accepted",
                                                "client-ref": m["public_id"]})  # fmt: skip
    assert r.json()["applied"] == 0  # accepted = sent: already sent, unchanged
    assert r.json()["unchanged"] == 1
    assert messages(env, cp)[0]["provider_message_id"] == "0B00000123"


@pytest.mark.usefixtures("vonage_env")
def test_malformed_receipt_of_an_authentic_request(env: Env, vonage_api: FakeApi) -> None:
    add_vonage(env, vonage_api)
    path = "/v1/webhooks/http/vg/status?token=dlr-token-1"
    problem(env.call("POST", path, key=None, json={"status": "delivered"}), 422, "messageId")
    problem(env.call("POST", path, key=None, content=b"{not json",
                     headers={"Content-Type": "application/json"}), 422, "body")  # fmt: skip


def test_unset_secret_variable_is_named(env: Env, vonage_api: FakeApi) -> None:
    add_vonage(env, vonage_api)
    with pytest.raises(InvalidInput) as exc:
        env.container.provider("vg", workspace=env.ws)
    assert exc.value.field == "api_secret"
    assert "CLICKTRAIL_PROVIDER_TEST_VONAGE_SECRET" in exc.value.message


def test_plivo_callbacks(env: Env, plivo_api: FakeApi) -> None:
    env.add_provider("pl", "http", preset="plivo", base_url=plivo_api.url,
                     status_callback=f"{PUBLIC}/v1/webhooks/http/pl/status", params={
                         "auth_id": "MA1", "auth_token": "t", "from": "14155550100",
                         "receipt_token": "cb-token"})  # fmt: skip
    cp = send_through(env, "pl")
    a, b = messages(env, cp)
    sent_url = json.loads(plivo_api.seen[0].body)["url"]
    assert sent_url == f"{PUBLIC}/v1/webhooks/http/pl/status?ct={a['public_id']}&token=cb-token"
    path = f"/v1/webhooks/http/pl/status?ct={a['public_id']}&token=cb-token"
    form = {"MessageUUID": a["provider_message_id"], "Status": "delivered", "ErrorCode": "000",
            "To": "14155550000", "From": "14155550100", "Units": "1"}  # fmt: skip
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = env.call("POST", path, key=None, content=urlencode(form), headers=headers)
    assert r.json()["applied"] == 1
    form = {**form, "MessageUUID": b["provider_message_id"], "Status": "undelivered",
            "ErrorCode": "30"}  # fmt: skip
    path = f"/v1/webhooks/http/pl/status?ct={b['public_id']}&token=cb-token"
    assert env.call("POST", path, key=None, content=urlencode(form),
                    headers=headers).json()["applied"] == 1  # fmt: skip
    ma, mb = messages(env, cp)
    assert (ma["status"], ma["error_code"]) == ("delivered", None)
    assert (mb["status"], mb["error_code"]) == ("undelivered", "30")


HMAC_SECRET = "hmac-secret-value"


def test_receipt_secret_must_be_a_given_param(env: Env) -> None:
    with pytest.raises(InvalidInput) as exc:
        env.add_provider("acme", "http", params={"key": "k"}, request={
            "url": "https://api.example.net/send", "body": {"to": "{to}"}}, receipts={
            "message_id": "ref", "status": "state", "statuses": {"done": "delivered"},
            "auth": {"type": "header_token", "header": "X-Token", "secret": "{hook_secret}"}})  # fmt: skip
    assert exc.value.field == "receipts.auth"
    assert env.container.provider_repo.list_providers(env.ws.id) == []


def test_hmac_signed_receipts_batch(env: Env) -> None:
    with FakeApi(lambda _s: Answer(200, {"id": "r-1"})) as api:
        env.add_provider("acme", "http", base_url=api.url,
                         params={"key": "k", "hook_secret": HMAC_SECRET},
                         secret_params=["key", "hook_secret"], request={
                             "url": "https://api.example.net/send", "auth": {
                                 "type": "bearer", "token": "{key}"},
                             "body": {"to": "{to}", "text": "{body}"}},
                         response={"message_id": "id"}, receipts={
                             "items": "events", "message_id": "ref", "status": "state",
                             "statuses": {"done": "delivered", "dead": "failed"},
                             "auth": {"type": "hmac_sha256", "header": "X-Acme-Signature",
                                      "secret": "{hook_secret}", "prefix": "sha256="}},
                         )  # fmt: skip
        make_contacts(env.store, env.ws, 1)
        cp = make_campaign(env.store, env.ws)
        send(env.store, env.ws, cp, env.tmp / "x",
             provider=env.container.provider("acme", workspace=env.ws))  # fmt: skip
    (m,) = messages(env, cp)
    assert m["provider_message_id"] == "r-1"
    body = json.dumps({"events": [{"ref": "r-1", "state": "done"},
                                  {"ref": "r-404", "state": "dead"}]}).encode()  # fmt: skip
    good = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    path = "/v1/webhooks/http/acme/status"
    headers = {"Content-Type": "application/json"}
    problem(env.call("POST", path, key=None, content=body,
                     headers={**headers, "X-Acme-Signature": "sha256=" + "0" * 64}), 403)  # fmt: skip
    problem(env.call("POST", path, key=None, content=body + b" ",
                     headers={**headers, "X-Acme-Signature": good}), 403)  # fmt: skip
    r = env.call(
        "POST", path, key=None, content=body, headers={**headers, "X-Acme-Signature": good}
    )
    assert r.json() == {"received": 2, "applied": 1, "unchanged": 0, "ignored": 0,
                        "unknown": ["r-404"]}  # fmt: skip
    assert messages(env, cp)[0]["status"] == "delivered"
