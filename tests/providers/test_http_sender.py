"""The generic HTTP provider against local HTTP servers: the Vonage and Plivo presets send
what those APIs document and read their answers; a hand-written description uses bearer auth,
a JSON template and an idempotency header; options are checked field by field."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from provider_fakes import LOCAL_POLICY, Answer, FakeApi, plivo_answer, vonage_answer

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.status import Status
from clicktrail.services.ports import OutgoingSms
from clicktrail.services.providers import ProviderConfig, Resolved
from clicktrail.sms.http import HttpKind, HttpProvider
from clicktrail.sms.http_config import presets
from clicktrail.sms.http_templates import at_path, render, render_body

PUBLIC = "https://ct.example.com"


@pytest.fixture
def vonage() -> Iterator[FakeApi]:
    with FakeApi(vonage_answer) as fake:
        yield fake


@pytest.fixture
def plivo() -> Iterator[FakeApi]:
    with FakeApi(plivo_answer) as fake:
        yield fake


def build(name: str, options: dict[str, Any], env: dict[str, str] | None = None) -> HttpProvider:
    settings, secrets = HttpKind(LOCAL_POLICY).configure(name, options)
    config = ProviderConfig(1, "prv_x", 1, "ws_x", name, "http", settings, secrets, 0, 0)
    resolved = Resolved(config, {k: (env or {}).get(k, v) for k, v in secrets.items()})
    sender = HttpKind(LOCAL_POLICY).build(resolved, lambda _refs: set())
    assert isinstance(sender, HttpProvider)
    return sender


def vonage_provider(fake: FakeApi) -> HttpProvider:
    return build("vg", {
        "preset": "vonage", "base_url": fake.url, "public_url": PUBLIC,
        "params": {"api_key": "abcd1234", "api_secret": "s3cr3t", "from": "AcmeShop",
                   "receipt_token": "tok-123"},
    })  # fmt: skip


def plivo_provider(fake: FakeApi, **extra: Any) -> HttpProvider:
    return build("pl", {
        "preset": "plivo", "base_url": fake.url, "public_url": PUBLIC,
        "params": {"auth_id": "MAXXXXXXXXXXXXXXXXXX", "auth_token": "plivo-token",
                   "from": "14155550100", "receipt_token": "tok-456"}, **extra,
    })  # fmt: skip


MSGS = [
    OutgoingSms("msg_a", "+14155550001", "Hi: https://s.example.com/c/abc", "GSM-7", 1),
    OutgoingSms("msg_b", "+14155550002", "Grüße 👋 https://s.example.com/c/def", "UCS-2", 1),
]


# -- Vonage -------------------------------------------------------------------------------------


def test_vonage_preset_sends_the_documented_form(vonage: FakeApi) -> None:
    results = vonage_provider(vonage).send(MSGS)
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    first, second = vonage.seen
    assert (first.method, first.path) == ("POST", "/sms/json")
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert {k: v[0] for k, v in first.form.items()} == {
        "api_key": "abcd1234", "api_secret": "s3cr3t", "from": "AcmeShop", "to": "14155550001",
        "text": MSGS[0].body, "type": "text", "client-ref": "msg_a",
        "callback": f"{PUBLIC}/v1/webhooks/http/vg/status?ct=msg_a&token=tok-123",
    }  # fmt: skip
    assert second.one("type") == "unicode"
    assert second.one("text") == MSGS[1].body
    # The provider's id is read from messages[0].message-id.
    assert results[0].provider_message_id and len(results[0].provider_message_id) == 16


def test_vonage_throttled_status_keeps_the_batch_queued(vonage: FakeApi) -> None:
    vonage.inject(Answer(200, {"message-count": "1", "messages": [
        {"status": "1", "error-text": "Throughput Rate Exceeded - please wait [ 30 ] and retry"}]}))  # fmt: skip
    results = vonage_provider(vonage).send(MSGS)
    assert [r.status for r in results] == [Status.QUEUED, Status.QUEUED]
    assert results[0].error_code == "1"
    assert len(vonage.seen) == 1


def test_vonage_invalid_number_fails_with_its_error_text(vonage: FakeApi) -> None:
    vonage.inject(Answer(200, {"message-count": "1", "messages": [
        {"status": "3", "error-text": "Invalid to address"}]}))  # fmt: skip
    results = vonage_provider(vonage).send(MSGS)
    assert [r.status for r in results] == [Status.FAILED, Status.SENT]
    assert (results[0].error_code, results[0].error_message) == ("3", "Invalid to address")


def test_server_errors_queue_and_honour_retry_after(vonage: FakeApi) -> None:
    vonage.inject(Answer(503, None, {"Retry-After": "12"}))
    (result,) = vonage_provider(vonage).send(MSGS[:1])
    assert (result.status, result.retry_after, result.error_code) == (
        Status.QUEUED, 12.0, "http_503")  # fmt: skip


# -- Plivo --------------------------------------------------------------------------------------


def test_plivo_preset_sends_json_with_basic_auth(plivo: FakeApi) -> None:
    results = plivo_provider(plivo).send(MSGS[:1])
    assert results[0].status == Status.SENT
    (seen,) = plivo.seen
    assert seen.path == "/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(
        b"MAXXXXXXXXXXXXXXXXXX:plivo-token").decode()  # fmt: skip
    assert json.loads(seen.body) == {
        "src": "14155550100", "dst": "14155550001", "text": MSGS[0].body,
        "url": f"{PUBLIC}/v1/webhooks/http/pl/status?ct=msg_a&token=tok-456", "method": "POST",
    }  # fmt: skip
    uuid.UUID(results[0].provider_message_id or "")  # message_uuid[0]


def test_plivo_without_callback_leaves_url_out(plivo: FakeApi) -> None:
    sender = build("pl", {"preset": "plivo", "base_url": plivo.url, "params": {
        "auth_id": "MA1", "auth_token": "t", "from": "1415", "receipt_token": "r"}})  # fmt: skip
    sender.send(MSGS[:1])
    assert "url" not in json.loads(plivo.seen[0].body)


def test_plivo_bad_request_fails_with_its_error(plivo: FakeApi) -> None:
    plivo.inject(Answer(400, {"api_id": "x", "error": "invalid destination number"}))
    (result,) = plivo_provider(plivo).send(MSGS[:1])
    assert (result.status, result.error_code, result.error_message) == (
        Status.FAILED, "http_400", "invalid destination number")  # fmt: skip


@pytest.mark.parametrize("status", [429, 401, 500])
def test_plivo_transient_answers_queue(plivo: FakeApi, status: int) -> None:
    plivo.inject(Answer(status, {"api_id": "x", "error": "nope"}, {"Retry-After": "3"}))
    results = plivo_provider(plivo).send(MSGS)
    assert [r.status for r in results] == [Status.QUEUED, Status.QUEUED]
    assert results[0].retry_after == 3.0
    assert len(plivo.seen) == 1


# -- a description written out ------------------------------------------------------------------

CUSTOM: dict[str, Any] = {
    "params": {"token": "${CT_API_TOKEN}", "sender": "Acme"},
    "secret_params": ["token"],
    "request": {
        "method": "POST", "url": "https://api.example.net/v2/sms",
        "headers": {"X-Client": "clicktrail"},
        "auth": {"type": "bearer", "token": "{token}"},
        "body": {"from": "{sender}", "to": ["{to}"], "text": "{body}",
                 "meta": {"id": "{message_id}", "parts": "{segments}", "literal": "{{x}}"}},
        "idempotency_header": "Idempotency-Key", "timeout": 1,
    },
    "response": {"message_id": "data.id"},
}  # fmt: skip


def test_custom_description_renders_templates_and_headers() -> None:
    with FakeApi(lambda _s: Answer(201, {"data": {"id": "abc-1"}})) as api:
        sender = build("ex", {**CUSTOM, "base_url": api.url}, env={"token": "T0K"})
        (result,) = sender.send(MSGS[:1])
        (seen,) = api.seen
    assert (result.status, result.provider_message_id) == (Status.SENT, "abc-1")
    assert seen.path == "/v2/sms"
    assert seen.headers["authorization"] == "Bearer T0K"
    assert seen.headers["idempotency-key"] == "msg_a"
    assert seen.headers["x-client"] == "clicktrail"
    assert json.loads(seen.body) == {
        "from": "Acme", "to": ["+14155550001"], "text": MSGS[0].body,
        "meta": {"id": "msg_a", "parts": "1", "literal": "{x}"},
    }  # fmt: skip
    assert sender.idempotent


def test_no_answer_with_an_idempotency_key_is_queued_for_a_retry() -> None:
    with FakeApi(lambda _s: Answer(201, {"data": {"id": "x"}})) as api:
        api.inject(Answer(201, {"data": {"id": "late"}}, hang=3))
        sender = build("ex", {**CUSTOM, "base_url": api.url}, env={"token": "t"})
        results = sender.send(MSGS)
    assert [r.status for r in results] == [Status.QUEUED, Status.QUEUED]
    assert results[0].error_code == "timeout"


def test_no_answer_without_an_idempotency_key_leaves_the_message_in_doubt() -> None:
    # The provider may well have taken it: a retry could send it twice. Left out of the
    # results, the sending job treats it as in doubt (held as `unknown` for this provider).
    request = {k: v for k, v in CUSTOM["request"].items() if k != "idempotency_header"}
    with FakeApi(lambda _s: Answer(201, {"data": {"id": "x"}})) as api:
        api.inject(Answer(201, {"data": {"id": "late"}}, hang=3))
        sender = build(
            "ex", {**CUSTOM, "request": request, "base_url": api.url}, env={"token": "t"}
        )
        results = sender.send(MSGS)
    assert not sender.idempotent
    assert [(r.message_id, r.status) for r in results] == [("msg_b", Status.QUEUED)]


def test_unreachable_api_is_queued() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = build("ex", {**CUSTOM, "base_url": f"http://127.0.0.1:{port}"}, env={"token": "t"})
    (result,) = sender.send(MSGS[:1])
    assert (result.status, result.error_code) == (Status.QUEUED, "unreachable")


def test_template_helpers() -> None:
    assert render("{a}-{{b}}-{a}", {"a": "1"}) == "1-{b}-1"
    assert render_body({"x": "{a}", "y": "{missing_ok}", "z": 3}, {"a": "", "missing_ok": "v"}) == {
        "y": "v", "z": 3}  # fmt: skip
    assert at_path({"a": [{"b": "c"}]}, "a.0.b") == "c"
    assert at_path({"a": []}, "a.0.b") is None
    assert set(presets()) >= {"vonage", "plivo"}


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"preset": "nexmo2"}, "preset"),
        ({"preset": "vonage", "params": {"api_key": "k"}}, "params.api_secret"),
        ({"preset": "vonage", "params": {"api_key": "k", "api_secret": "s", "from": "f",
                                          "receipt_token": "t", "colour": "red"}}, "params.colour"),
        ({"preset": "vonage", "request": {}}, "request"),
        ({**CUSTOM, "request": {**CUSTOM["request"], "url": "https://{host}/x"}}, "request.url"),
        ({**CUSTOM, "request": {**CUSTOM["request"], "body": {"x": "{nope}"}}}, "request"),
        ({**CUSTOM, "request": {**CUSTOM["request"], "auth": {"type": "digest"}}}, "request.auth"),
        ({**CUSTOM, "receipts": {"message_id": "id", "status": "s", "statuses": {},
                                 "auth": {"type": "magic"}}}, "receipts.auth.type"),
        ({**CUSTOM, "receipts": {"message_id": "id", "status": "s", "statuses": {"ok": "done"},
                                 "auth": {"type": "none"}}}, "receipts.statuses.ok"),
        ({**CUSTOM, "response": {"status": "s"}}, "response.accepted"),
        ({**CUSTOM, "params": {"token": "${BAD NAME}", "sender": "x"}}, "params.token"),
        ({**CUSTOM, "public_url": "not a url"}, "public_url"),
        ({**CUSTOM, "flavour": 1}, "flavour"),
    ],
)  # fmt: skip
def test_configure_names_the_bad_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        HttpKind().configure("ex", options)
    assert exc.value.field == field, exc.value.message


def test_preset_secrets_are_kept_apart() -> None:
    settings, secrets = HttpKind().configure("vg", {"preset": "vonage", "params": {
        "api_key": "k", "api_secret": "${CLICKTRAIL_PROVIDER_VONAGE_SECRET}", "from": "Acme",
        "receipt_token": "plain-token"}})  # fmt: skip
    assert secrets == {
        "api_secret": "${CLICKTRAIL_PROVIDER_VONAGE_SECRET}",
        "receipt_token": "plain-token",
    }
    assert settings["params"] == {"api_key": "k", "from": "Acme"}
    assert settings["preset"] == "vonage"
