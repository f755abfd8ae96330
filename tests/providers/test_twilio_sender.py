"""The Twilio provider through the official SDK against a local fake Twilio (a real HTTP
server): what each answer becomes, the status callback on every message, and reconcile."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

import pytest
from provider_fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LOCAL_POLICY,
    SERVICE_SID,
    Answer,
    FakeTwilio,
    days_ago,
)

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.status import Status
from clicktrail.services.ports import OutgoingSms
from clicktrail.sms.twilio import TwilioKind, TwilioProvider

CALLBACK = "https://ct.example.com/v1/webhooks/twilio/status"


def provider(twilio: FakeTwilio, **overrides: object) -> TwilioProvider:
    kwargs: dict[str, object] = {
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006",
        "status_callback": CALLBACK, "base_url": twilio.url, "timeout": 1.0,
        "policy": LOCAL_POLICY,
    }  # fmt: skip
    kwargs.update(overrides)
    return TwilioProvider("tw", **kwargs)  # type: ignore[arg-type]


def batch(n: int, start: int = 0) -> list[OutgoingSms]:
    return [
        OutgoingSms(
            f"msg_{i}", f"+1415555{i:04d}", f"Hi {i}: https://s.example.com/c/t{i}", "GSM-7", 1
        )
        for i in range(start, start + n)
    ]


def statuses(results: Sequence[object]) -> list[str]:
    return [r.status.value for r in results]  # type: ignore[attr-defined]


def test_accepted_messages_are_sent_with_twilio_sid_and_callback(twilio: FakeTwilio) -> None:
    msgs = batch(3)
    results = provider(twilio).send(msgs)
    assert statuses(results) == ["sent"] * 3
    assert [r.provider_message_id for r in results] == [m["sid"] for m in twilio.messages]
    assert all(r.provider_message_id and r.provider_message_id.startswith("SM") for r in results)
    first = twilio.creates()[0]
    assert first.one("To") == "+14155550000"
    assert first.one("From") == "+15005550006"
    assert first.one("Body") == msgs[0].body
    # clicktrail's message id rides on the callback URL, so a receipt finds its message.
    assert first.one("StatusCallback") == f"{CALLBACK}?ct=msg_0"
    assert first.one("MessagingServiceSid") is None


def test_messaging_service_instead_of_from(twilio: FakeTwilio) -> None:
    p = provider(twilio, from_number=None, messaging_service_sid=SERVICE_SID, status_callback=None)
    assert statuses(p.send(batch(1))) == ["sent"]
    create = twilio.creates()[0]
    assert create.one("MessagingServiceSid") == SERVICE_SID
    assert create.one("From") is None
    assert create.one("StatusCallback") is None
    assert p.sender_key == f"twilio:{SERVICE_SID}"


def test_429_queues_the_batch_with_retry_after_and_stops(twilio: FakeTwilio) -> None:
    answer = twilio.error(429, 20429, "Too Many Requests")
    answer.headers["Retry-After"] = "7"
    twilio.inject(answer)
    results = provider(twilio).send(batch(3))
    assert statuses(results) == ["queued"] * 3
    assert [r.retry_after for r in results] == [7.0, 7.0, 7.0]
    assert results[0].error_code == "20429"
    assert results[0].error_message == "Too Many Requests"
    assert len(twilio.creates()) == 1  # the rest of the batch was not hammered at Twilio
    assert twilio.messages == []


def test_5xx_queues_without_retry_after(twilio: FakeTwilio) -> None:
    twilio.inject(twilio.error(500, 20500, "Internal Server Error"))
    (result,) = provider(twilio).send(batch(1))
    assert result.status == Status.QUEUED
    assert result.retry_after is None
    assert result.error_code == "20500"


def test_retry_after_as_http_date(twilio: FakeTwilio) -> None:
    from email.utils import formatdate

    answer = twilio.error(503, 20503, "Service Unavailable")
    answer.headers["Retry-After"] = formatdate(time.time() + 30, usegmt=True)
    twilio.inject(answer)
    (result,) = provider(twilio).send(batch(1))
    assert result.status == Status.QUEUED
    assert result.retry_after is not None
    assert 25 <= result.retry_after <= 31


def test_4xx_fails_the_message_keeping_twilio_code_and_message(twilio: FakeTwilio) -> None:
    twilio.inject(twilio.error(400, 21211, "The 'To' number +1415 is not a valid phone number."))
    results = provider(twilio).send(batch(2))
    assert statuses(results) == ["failed", "sent"]  # a bad number does not stop the batch
    assert results[0].error_code == "21211"
    assert results[0].error_message == "The 'To' number +1415 is not a valid phone number."
    assert results[0].provider_message_id is None


def test_problem_details_errors_are_read_too(twilio: FakeTwilio) -> None:
    twilio.inject(Answer(400, {"type": "https://www.twilio.com/docs/errors/21211",
                               "title": "Invalid 'To' Phone Number", "status": 400,
                               "code": 21211, "detail": "+1415 is not a valid phone number"}))  # fmt: skip
    (result,) = provider(twilio).send(batch(1))
    assert (result.status, result.error_code, result.error_message) == (
        Status.FAILED, "21211", "+1415 is not a valid phone number")  # fmt: skip


def test_wrong_credentials_keep_messages_queued(twilio: FakeTwilio) -> None:
    results = provider(twilio, auth_token="0" * 32).send(batch(2))
    assert statuses(results) == ["queued", "queued"]
    assert results[0].error_code == "20003"
    assert twilio.messages == []


def test_unreachable_twilio_queues(twilio: FakeTwilio) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    results = provider(twilio, base_url=f"http://127.0.0.1:{port}").send(batch(2))
    assert statuses(results) == ["queued", "queued"]
    assert results[0].error_code == "unreachable"


def test_lost_answer_is_checked_with_twilio_before_resending(twilio: FakeTwilio) -> None:
    twilio.inject(Answer(201, hang=3))  # Twilio stores the message, the answer never comes
    (result,) = provider(twilio).send(batch(1))
    assert result.status == Status.SENT
    assert result.provider_message_id == twilio.messages[0]["sid"]


def test_lost_request_not_at_twilio_is_queued(twilio: FakeTwilio) -> None:
    twilio.inject(Answer(201, hang=3, keep=False))  # no answer, and Twilio has no message
    (result,) = provider(twilio).send(batch(1))
    assert result.status == Status.QUEUED
    assert result.error_code == "timeout"


# -- reconcile ----------------------------------------------------------------------------------


def test_reconcile_finds_what_twilio_took(twilio: FakeTwilio) -> None:
    msgs = batch(4)
    took = [twilio.add_message(m.to, m.body) for m in msgs[:2]]
    # Same number, other body; and the same body sent long ago: neither counts.
    twilio.add_message(msgs[2].to, "another message")
    twilio.add_message(msgs[3].to, msgs[3].body, created=days_ago(40))
    results = provider(twilio).reconcile(msgs)
    assert [(r.message_id, r.status, r.provider_message_id) for r in results] == [
        ("msg_0", Status.SENT, took[0]["sid"]),
        ("msg_1", Status.SENT, took[1]["sid"]),
    ]


def test_reconcile_skips_sids_clicktrail_already_has(twilio: FakeTwilio) -> None:
    (msg,) = batch(1)
    known = twilio.add_message(msg.to, msg.body, created=days_ago(2))
    p = provider(twilio, known_refs=lambda refs: {r for r in refs if r == known["sid"]})
    assert p.reconcile([msg]) == []
    newer = twilio.add_message(msg.to, msg.body)
    (result,) = p.reconcile([msg])
    assert result.provider_message_id == newer["sid"]


def test_reconcile_pages_through_twilio_lists(twilio: FakeTwilio) -> None:
    (msg,) = batch(1)
    twilio.add_message(msg.to, msg.body, created=days_ago(1))
    for i in range(120):  # newer messages to the same number push it to the third page
        twilio.add_message(msg.to, f"later {i}")
    (result,) = provider(twilio).reconcile([msg])
    assert result.status == Status.SENT
    pages = [s for s in twilio.seen if s.method == "GET"]
    assert len(pages) == 3


def test_reconcile_reports_failures_twilio_recorded(twilio: FakeTwilio) -> None:
    (msg,) = batch(1)
    twilio.add_message(msg.to, msg.body, status="failed")
    (result,) = provider(twilio).reconcile([msg])
    assert result.status == Status.FAILED


def test_reconcile_with_messaging_service_filters_on_it(twilio: FakeTwilio) -> None:
    a, b = batch(2)
    twilio.add_message(a.to, a.body, service="MG" + "1" * 32)
    mine = twilio.add_message(b.to, b.body, service=SERVICE_SID)
    p = provider(twilio, from_number=None, messaging_service_sid=SERVICE_SID)
    results = p.reconcile([a, b])
    assert [r.provider_message_id for r in results] == [mine["sid"]]


def test_reconcile_ignores_inbound_messages(twilio: FakeTwilio) -> None:
    (msg,) = batch(1)
    twilio.add_message(msg.to, msg.body, direction="inbound")
    assert provider(twilio).reconcile([msg]) == []


def test_reconcile_refuses_to_guess_when_twilio_cannot_answer(twilio: FakeTwilio) -> None:
    p = provider(twilio, auth_token="0" * 32)
    with pytest.raises(Conflict, match="nothing was resent"):
        p.reconcile(batch(1))


# -- options ------------------------------------------------------------------------------------


def test_configure_checks_and_splits_secrets() -> None:
    kind = TwilioKind()
    settings, secrets = kind.configure("tw", {
        "account_sid": ACCOUNT_SID, "auth_token": "${TWILIO_AUTH_TOKEN}", "from": "+15005550006",
        "public_url": "https://ct.example.com/",
    })  # fmt: skip
    assert secrets == {"auth_token": "${TWILIO_AUTH_TOKEN}"}
    assert settings["status_callback"] == CALLBACK
    assert "auth_token" not in settings
    assert settings["timeout"] == 10


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"auth_token": "x", "from": "+1"}, "account_sid"),
        ({"account_sid": "AC123", "auth_token": "x", "from": "+1"}, "account_sid"),
        ({"account_sid": ACCOUNT_SID, "from": "+1"}, "auth_token"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x"}, "from"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x", "messaging_service_sid": "MGx"},
         "messaging_service_sid"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x", "from": "+1", "status_callback": "ftp://x"},
         "status_callback"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "${NOT VALID}", "from": "+1"}, "auth_token"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x", "from": "+1", "timeout": 0}, "timeout"),
        ({"account_sid": ACCOUNT_SID, "auth_token": "x", "from": "+1", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_configure_names_the_bad_option(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        TwilioKind().configure("tw", options)
    assert exc.value.field == field
