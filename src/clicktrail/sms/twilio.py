"""The Twilio provider: sends through the official SDK and reads Twilio's status callbacks.

Sending (`TwilioProvider.send`), one Messages API request per message:

* accepted → ``sent`` with Twilio's SID as the provider message id;
* HTTP 429 or 5xx, or no connection → ``queued`` with ``retry_after`` (Twilio's Retry-After
  when it gives one); the rest of the batch waits too, so a throttled account is not hammered;
* HTTP 401/403 → ``queued`` as well: credentials and account state concern every message, not
  this one (the error code is kept so the operator sees why);
* any other 4xx → ``failed`` with Twilio's error code and message kept;
* a request that left but got no answer (read timeout, dropped connection) is in doubt: Twilio
  is asked whether it took the message (the `reconcile` rule) before it is queued again.

Each message carries ``status_callback`` = the configured callback URL plus ``ct=<message id>``,
so a receipt finds its message even when Twilio's answer to the send was lost.

`reconcile` (resume after a crash): a message in doubt counts as taken by Twilio when Twilio
lists, on the same account, an outbound message to the same number with exactly the same body,
created within the last ``reconcile_days`` days (from the same From number, or through the same
Messaging Service), whose SID clicktrail has not recorded for another message. Bodies carry
their own short links, so two messages of clicktrail are practically never equal. Twilio must
not rewrite bodies for this to hold: leave the Messaging Service's smart encoding and link
shortening off (clicktrail does both itself).

``base_url`` points the SDK at a Twilio-compatible gateway (or a test double) instead of
``https://api.twilio.com``. Every request, to Twilio or to a base URL, goes through the
operator's `OutboundPolicy` (``clicktrail.outbound``): a base URL is checked when configured, and
each connection after DNS; a message the policy refuses fails with ``forbidden_destination``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.status import Status
from clicktrail.outbound import ForbiddenDestination, OutboundPolicy, policy_session
from clicktrail.services.ports import OutgoingSms, SendResult, SmsProvider
from clicktrail.services.providers import (
    InboundWebhook,
    ProviderReceipt,
    Resolved,
    callback_for,
    check_keys,
    check_number,
    check_secret,
    check_url,
    echoed_message_id,
)
from clicktrail.sms.retry import parse_retry_after

log = logging.getLogger("clicktrail.sms.twilio")
# The SDK logs every request (numbers and bodies included) at INFO: keep that out of our logs.
_sdk_log = logging.getLogger("clicktrail.sms.twilio.sdk")
_sdk_log.setLevel(logging.WARNING)

WEBHOOK_PATH = "/v1/webhooks/twilio/status"
OPTIONS = (
    "account_sid", "auth_token", "from", "messaging_service_sid", "status_callback",
    "public_url", "base_url", "timeout", "reconcile_days", "rate",
)  # fmt: skip
_ACCOUNT_SID = "AC"
_SERVICE_SID = "MG"
# Twilio's MessageStatus → clicktrail's receipt status (None: nothing to record).
STATUSES: dict[str, Status | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,  # read implies delivered (channels with read receipts)
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,  # a scheduled message that was never sent
    "partially_delivered": None,
    "receiving": None,
    "received": None,
}


def _sid(value: Any, prefix: str, field: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    body = text[2:]
    if not (
        text.startswith(prefix)
        and len(body) == 32
        and all(c in "0123456789abcdefABCDEF" for c in body)
    ):
        raise InvalidInput(
            f"{field} must be {prefix} followed by 32 hexadecimal digits, got {value!r}",
            field=field,
        )
    return text


class _Client(TwilioHttpClient):  # type: ignore[misc]  # the SDK ships no type hints
    """The SDK's HTTP client, sent to `base_url` instead of Twilio's hosts when one is given,
    remembering each thread's last response (for Retry-After and Twilio's error body)."""

    def __init__(self, base_url: str | None, timeout: float, policy: OutboundPolicy) -> None:
        super().__init__(timeout=timeout, logger=_sdk_log)
        policy_session(policy, self.session)
        self.base = urlsplit(base_url.rstrip("/")) if base_url else None
        self.last = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if self.base is not None:
            parts = urlsplit(url)
            url = urlunsplit(
                (
                    self.base.scheme,
                    self.base.netloc,
                    self.base.path + parts.path,
                    parts.query,
                    parts.fragment,
                )
            )
        self.last.response = None
        response: TwilioResponse = super().request(method, url, *args, **kwargs)
        self.last.response = response
        return response

    def close(self) -> None:
        """Close pooled connections (the session stays usable and reconnects when needed)."""
        if self.session is not None:
            self.session.close()

    def last_response(self) -> TwilioResponse | None:
        """The last response this thread received, if any."""
        return getattr(self.last, "response", None)


class TwilioProvider:
    """Sends SMS through one Twilio account (see the module docstring for the rules)."""

    # `reconcile` asks Twilio, which lists every message it took: a sending job may resend
    # what Twilio does not list (the in-doubt rule: services/sending/__init__.py).
    reconcile_complete = True
    idempotent = False

    def __init__(
        self,
        name: str,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        reconcile_days: float = 30.0,
        known_refs: Callable[[Sequence[str]], set[str]] = lambda _refs: set(),
        rate: float | None = None,
        policy: OutboundPolicy | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise InvalidInput("give a From number or a Messaging Service SID", field="from")
        self.name = name
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.reconcile_days = reconcile_days
        self.known_refs = known_refs
        # What a send rate applies to: the sender (Twilio queues per number or service).
        self.sender_key = f"twilio:{messaging_service_sid or from_number}"
        # Messages per second this sender may send (a sending job's default; None: the
        # send_rate setting).
        self.default_rate = rate
        self.http = _Client(base_url, timeout, policy or OutboundPolicy())
        # `environment` non-empty so the SDK does not read TWILIO_* variables behind our back.
        self.client = Client(
            account_sid,
            auth_token,
            account_sid=account_sid,
            http_client=self.http,
            environment={"CLICKTRAIL": "1"},
        )

    # -- sending

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Send `batch` one message at a time; return one result per message, in order."""
        results: list[SendResult] = []
        try:
            for i, message in enumerate(batch):
                result = self._send_one(message)
                results.append(result)
                if result.status == Status.QUEUED:
                    # Throttled, unwell or unreachable: the rest waits as long (never tried).
                    results += [
                        SendResult(m.message_id, Status.QUEUED, retry_after=result.retry_after)
                        for m in batch[i + 1 :]
                    ]
                    break
        finally:
            self.http.close()
        return results

    def _send_one(self, m: OutgoingSms) -> SendResult:
        kwargs: dict[str, Any] = {"to": m.to, "body": m.body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        if self.from_number:
            kwargs["from_"] = self.from_number
        if self.status_callback:
            kwargs["status_callback"] = callback_for(self.status_callback, m.message_id)
        try:
            created = self.client.messages.create(**kwargs)
        except ForbiddenDestination as exc:
            log.error("provider %s: %s", self.name, exc)
            return SendResult(m.message_id, Status.FAILED, error_code="forbidden_destination",
                              error_message=str(exc))  # fmt: skip
        except TwilioRestException as exc:
            return self._refused(m, int(exc.status), exc.code, str(exc.msg))
        except TwilioServiceException as exc:  # the RFC 9457 error shape of newer services
            return self._refused(m, int(exc.status), exc.code, str(exc.detail or exc.title))
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
                return SendResult(
                    m.message_id, Status.QUEUED, error_code="unreachable",
                    error_message=f"Twilio unreachable: {exc.__class__.__name__}",
                )  # fmt: skip
            return self._in_doubt(m, exc)
        except requests.RequestException as exc:
            return self._in_doubt(m, exc)
        status = str(created.status or "").lower()
        if status in ("failed", "undelivered"):
            return SendResult(
                m.message_id, Status.FAILED, created.sid,
                error_code=_code(created.error_code), error_message=created.error_message,
            )  # fmt: skip
        return SendResult(m.message_id, Status.SENT, created.sid)

    def _refused(self, m: OutgoingSms, status: int, code: Any, fallback: str) -> SendResult:
        response = self.http.last_response()
        text = fallback
        if response is not None:
            try:
                body = json.loads(response.text)
                text = str(body.get("message") or fallback)
                code = body.get("code", code)
            except (ValueError, AttributeError):
                pass
        error_code = _code(code) or f"http_{status}"
        if status == 429 or status >= 500 or status in (401, 403):
            headers = response.headers if response is not None else None
            retry = parse_retry_after(headers.get("Retry-After") if headers else None)
            if status in (401, 403):
                log.error("Twilio refused the credentials of provider %s: %s", self.name, text)
            return SendResult(
                m.message_id, Status.QUEUED, error_code=error_code, error_message=text,
                retry_after=retry,
            )  # fmt: skip
        return SendResult(m.message_id, Status.FAILED, error_code=error_code, error_message=text)

    def _in_doubt(self, m: OutgoingSms, exc: Exception) -> SendResult:
        # The request may have reached Twilio: ask before sending it again.
        try:
            found = self.reconcile([m])
        except Conflict:
            found = []
        if found:
            return found[0]
        return SendResult(
            m.message_id, Status.QUEUED, error_code="timeout",
            error_message=f"no answer from Twilio ({exc.__class__.__name__}); not found there",
        )  # fmt: skip

    # -- reconcile

    def reconcile(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Return results for the messages of `batch` that Twilio already has (the rule is in
        the module docstring). Raises `Conflict` when Twilio cannot be asked: nothing is then
        resent, and the resume can be tried again."""
        since = datetime.now(UTC) - timedelta(days=self.reconcile_days)
        claimed: set[str] = set()
        out: list[SendResult] = []
        for m in batch:
            try:
                candidates = self._listed(m, since)
            finally:
                self.http.close()
            known = self.known_refs([c.sid for c in candidates]) if candidates else set()
            for c in candidates:
                if c.sid in known or c.sid in claimed:
                    continue
                claimed.add(c.sid)
                status = str(c.status or "").lower()
                if status in ("failed", "undelivered", "canceled"):
                    out.append(SendResult(
                        m.message_id, Status.FAILED, c.sid,
                        error_code=_code(c.error_code), error_message=c.error_message,
                    ))  # fmt: skip
                else:
                    out.append(SendResult(m.message_id, Status.SENT, c.sid))
                break
        return out

    def _listed(self, m: OutgoingSms, since: datetime) -> list[Any]:
        """Twilio's outbound messages to `m.to` with `m.body`, newest first, back to `since`."""
        query: dict[str, Any] = {"to": m.to, "page_size": 50}
        if self.from_number and not self.messaging_service_sid:
            query["from_"] = self.from_number
        found = []
        try:
            for item in self.client.messages.stream(**query):
                created = item.date_created
                if isinstance(created, datetime) and created < since:
                    break  # listed newest first: the rest is older still
                if not str(item.direction or "").startswith("outbound"):
                    continue
                if self.messaging_service_sid and item.messaging_service_sid not in (
                    None,
                    self.messaging_service_sid,
                ):
                    continue
                if item.body == m.body:
                    found.append(item)
        except TwilioException:
            # A page that fails raises the base exception: the status is on our last response.
            response = self.http.last_response()
            status = response.status_code if response is not None else "no answer"
            raise Conflict(
                f"cannot ask Twilio which in-doubt messages it took (HTTP {status}); nothing "
                "was resent, try again",
                field="provider",
            ) from None
        except ForbiddenDestination as exc:
            raise Conflict(
                f"cannot ask Twilio which in-doubt messages it took: {exc}", field="provider"
            ) from None
        except requests.RequestException as exc:
            raise Conflict(
                f"cannot ask Twilio which in-doubt messages it took ({exc.__class__.__name__}); "
                "nothing was resent, try again",
                field="provider",
            ) from None
        return found


def _code(code: Any) -> str | None:
    return None if code in (None, "", 0, "0") else str(code)


def _never_connected(exc: requests.ConnectionError) -> bool:
    # urllib3 wraps "connection refused" and DNS failures as NewConnectionError: the request
    # never left, so it cannot have been taken.
    text = repr(exc)
    return "NewConnectionError" in text or "NameResolutionError" in text


# -- the kind: configuration, sender, webhooks --------------------------------------------------


class _Form:
    """Form fields for the SDK's validator, which asks `getall` for repeated names."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def __iter__(self) -> Any:
        return iter(self.fields)

    def __getitem__(self, name: str) -> str:
        return self.fields[name][-1]

    def getall(self, name: str) -> list[str]:
        return self.fields[name]


def _form(hook: InboundWebhook) -> dict[str, list[str]]:
    return parse_qs(hook.body.decode("utf-8", "replace"), keep_blank_values=True)


def signed_url(status_callback: str | None, hook: InboundWebhook) -> str:
    """The URL Twilio signed: the configured callback's scheme, host and path with the query
    the request came with (``ct=…``); without a configured callback, the URL as received."""
    if not status_callback:
        return hook.url
    parts = urlsplit(status_callback)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, hook.query, ""))


class TwilioKind:
    """Twilio as a kind of provider: options, sender, status callbacks."""

    name = "twilio"

    def __init__(self, policy: OutboundPolicy | None = None) -> None:
        self.policy = policy or OutboundPolicy()

    def configure(
        self, name: str, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Check Twilio options; return (settings, secrets). Raises `InvalidInput`."""
        check_keys(options, OPTIONS)
        settings: dict[str, Any] = {
            "account_sid": _sid(options.get("account_sid"), _ACCOUNT_SID, "account_sid")
        }
        secrets = {"auth_token": check_secret(options.get("auth_token"), "auth_token")}
        sender = options.get("from")
        service = options.get("messaging_service_sid")
        if not sender and not service:
            raise InvalidInput(
                "give the sender: from (a Twilio number, short code or sender id) or "
                "messaging_service_sid",
                field="from",
            )
        if sender:
            if not isinstance(sender, str) or len(sender.strip()) > 32:
                raise InvalidInput(f"from: {sender!r} is not a sender (up to 32 characters)",
                                   field="from")  # fmt: skip
            settings["from"] = sender.strip()
        if service:
            settings["messaging_service_sid"] = _sid(service, _SERVICE_SID, "messaging_service_sid")
        callback = options.get("status_callback")
        public = options.get("public_url")
        if callback and public:
            raise InvalidInput("give status_callback or public_url, not both", field="public_url")
        if public:
            callback = check_url(public, "public_url").rstrip("/") + WEBHOOK_PATH
        if callback:
            settings["status_callback"] = check_url(callback, "status_callback")
        if options.get("base_url"):
            base = check_url(options["base_url"], "base_url").rstrip("/")
            settings["base_url"] = self.policy.check_url(base, "base_url")
        settings["timeout"] = check_number(options.get("timeout", 10), "timeout", 1, 120)
        settings["reconcile_days"] = check_number(
            options.get("reconcile_days", 30), "reconcile_days", 1, 400
        )
        if options.get("rate") is not None:
            settings["rate"] = check_number(options["rate"], "rate", 0, 10_000)
        return settings, secrets

    def build(
        self, provider: Resolved, known_refs: Callable[[Sequence[str]], set[str]]
    ) -> SmsProvider:
        """Return the sender of a configured Twilio account."""
        s = provider.settings
        return TwilioProvider(
            provider.config.name,
            account_sid=s["account_sid"],
            auth_token=provider.secrets["auth_token"],
            from_number=s.get("from"),
            messaging_service_sid=s.get("messaging_service_sid"),
            status_callback=s.get("status_callback"),
            base_url=s.get("base_url"),
            timeout=float(s.get("timeout", 10)),
            reconcile_days=float(s.get("reconcile_days", 30)),
            known_refs=known_refs,
            rate=s.get("rate"),
            policy=self.policy,
        )

    def authentic(self, provider: Resolved, hook: InboundWebhook) -> bool:
        """Return True if `hook` is signed with this account's auth token (``X-Twilio-
        Signature`` over the callback URL and the form) and names this account."""
        signature = hook.headers.get("x-twilio-signature")
        if not signature:
            return False
        fields = _form(hook)
        account = fields.get("AccountSid", [""])[-1]
        if account and account != provider.settings["account_sid"]:
            return False
        validator = RequestValidator(provider.secrets["auth_token"])
        algorithm = get_signature_algorithm(
            hook.headers.get("x-twilio-webhooks-signature-settings")
        )
        url = signed_url(provider.settings.get("status_callback"), hook)
        return bool(validator.validate(url, _Form(fields), signature, algorithm))

    def read_receipts(self, provider: Resolved, hook: InboundWebhook) -> list[ProviderReceipt]:
        """Return the one receipt of a status callback (MessageSid, MessageStatus, ErrorCode).

        Raises `InvalidInput` when it names no message or no status.
        """
        fields = {k: v[-1] for k, v in _form(hook).items()}
        sid = fields.get("MessageSid") or fields.get("SmsSid")
        raw = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
        if not sid:
            raise InvalidInput("MessageSid is missing", field="MessageSid")
        if not raw:
            raise InvalidInput("MessageStatus is missing", field="MessageStatus")
        return [
            ProviderReceipt(
                provider_message_id=sid,
                status=STATUSES.get(raw),
                raw_status=raw,
                message_id=echoed_message_id(hook.query),
                error_code=_code(fields.get("ErrorCode")),
                error_message=fields.get("ErrorMessage") or None,
                at_us=_dlr_done(fields.get("RawDlrDoneDate")),
            )
        ]


def _dlr_done(value: str | None) -> int | None:
    """The carrier's delivery time (``RawDlrDoneDate``, YYMMDDhhmm UTC) in µs, if given and
    not in the future. Floored to the minute: never later than the real delivery, so a quick
    click does not look as if it came before delivery."""
    if not value:
        return None
    try:
        when = datetime.strptime(value.strip(), "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    us = int(when.timestamp() * 1_000_000)
    return us if us <= time.time_ns() // 1000 else None
