"""The generic HTTP provider: any SMS API that takes one message per HTTP request.

A provider is described by data (docs/providers.md has the full reference):

* ``request`` — method, URL, headers, auth (basic or bearer), a JSON or form body template,
  an optional idempotency header carrying clicktrail's message id, a timeout;
* ``response`` — where the provider's message id is in the JSON answer, and for APIs that
  answer 200 with a status inside (Vonage), which values mean accepted or try again;
* ``receipts`` — how the provider's delivery receipts map onto clicktrail's (field paths,
  status values) and how they are authenticated (a token in the query or a header, or an
  HMAC-SHA256 of the body).

Templates hold ``{placeholders}``: ``{to}`` (E.164), ``{to_digits}`` (without ``+``),
``{body}``, ``{message_id}``, ``{status_callback}``, ``{encoding}``, ``{segments}`` and the
provider's own ``params`` (``{from}``, ``{api_key}``…); ``{{`` and ``}}`` are literal braces. A
body field that renders empty is left out. Presets (``presets/*.json``) describe aggregators
(Vonage, Plivo) so only their params are needed.

Results: 2xx (and, with a status field, an accepted value) → ``sent``; 429, 5xx, 401, 403,
408, 425, a status value listed as transient, or no connection → ``queued`` with
``retry_after`` from Retry-After (the rest of the batch waits too); other answers → ``failed``
with the provider's code and words. A request that got no answer is queued again. A generic API
cannot be asked whether it took a message, so `reconcile` knows nothing: a sending job holds
messages in doubt for an operator, unless an ``idempotency_header`` lets the provider drop a
repeat (then they are sent again).

Where requests may go is the operator's `OutboundPolicy` (``clicktrail.outbound``): the URL is
checked when the provider is configured (https, no address the policy refuses) and every
connection when it is made (after DNS). A send the policy refuses fails the message with
``forbidden_destination``; nothing is posted. Redirects are not followed (a 3xx fails the
message), so an allowed host cannot bounce a message and its secrets elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import httpx

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.status import Status, parse_status
from clicktrail.outbound import ForbiddenDestination, OutboundPolicy
from clicktrail.services.ports import OutgoingSms, SendResult, SmsProvider
from clicktrail.services.providers import (
    InboundWebhook,
    ProviderReceipt,
    Resolved,
    callback_for,
    echoed_message_id,
)
from clicktrail.sms.http_config import check_options
from clicktrail.sms.http_templates import as_text, at_path, render, render_body
from clicktrail.sms.retry import parse_retry_after

_MAX_ERROR = 500

log = logging.getLogger("clicktrail.providers")


# -- the sender ---------------------------------------------------------------------------------


class HttpProvider:
    """Sends each message as one HTTP request described by a provider config."""

    # A generic API cannot be asked what it took (the in-doubt rule:
    # services/sending/__init__.py).
    reconcile_complete = False

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or OutboundPolicy()
        self.request = settings["request"]
        self.response = settings["response"]
        self.receipts = settings.get("receipts")
        self.values = {**settings.get("params", {}), **secrets}
        self.status_callback = settings.get("status_callback")
        # With an idempotency header the provider drops a repeat of a message in doubt.
        self.idempotent = bool(self.request.get("idempotency_header"))
        self.sender_key = f"{name}:{self.values.get('from', '')}"
        self.default_rate: float | None = settings.get("rate")  # a sending job's default

    def _callback(self, message_id: str) -> str:
        if not self.status_callback:
            return ""
        url = callback_for(self.status_callback, message_id)
        auth = (self.receipts or {}).get("auth") or {}
        if auth.get("type") == "query_token":
            # The token the webhook checks rides on the URL the provider calls back.
            token = render(auth["secret"], self.values)
            parts = urlsplit(url)
            query = parts.query + "&" + urlencode({auth["param"]: token})
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        return url

    def _build(self, m: OutgoingSms) -> httpx.Request:
        r = self.request
        values = {
            **self.values,
            "to": m.to,
            "to_digits": m.to.lstrip("+"),
            "body": m.body,
            "message_id": m.message_id,
            "status_callback": self._callback(m.message_id),
            "encoding": r["encoding_names"].get(m.encoding, m.encoding),
            "segments": str(m.segments),
        }
        url = render(r["url"], values, lambda v: quote(v, safe=""))
        headers = {k: render(v, values) for k, v in r["headers"].items()}
        if r.get("idempotency_header"):
            headers[r["idempotency_header"]] = m.message_id
        auth = r.get("auth")
        if auth and auth["type"] == "bearer":
            headers["Authorization"] = "Bearer " + render(auth["token"], values)
        elif auth and auth["type"] == "basic":
            pair = f"{render(auth['username'], values)}:{render(auth['password'], values)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        body = render_body(r["body"], values)
        if r["method"] == "GET":
            return httpx.Request("GET", url, headers=headers)
        if r["body_format"] == "form":
            return httpx.Request(r["method"], url, headers=headers, data=body)
        return httpx.Request(r["method"], url, headers=headers, json=body)

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Send `batch` one request per message; return one result per message, in order."""
        results: list[SendResult] = []
        # One connection pool per batch: nothing stays open between batches.
        with httpx.Client(
            timeout=httpx.Timeout(float(self.request["timeout"]), connect=5.0),
            follow_redirects=False,
            transport=self.policy.httpx_transport(),
        ) as client:
            for i, m in enumerate(batch):
                result = self._send_one(client, m)
                if result is None:
                    # Sent, but no answer: the provider may have taken it. Left out of the
                    # results, the message is in doubt (never resent blindly); the rest waits.
                    results += [SendResult(x.message_id, Status.QUEUED) for x in batch[i + 1 :]]
                    break
                results.append(result)
                if result.status == Status.QUEUED:
                    results += [
                        SendResult(x.message_id, Status.QUEUED, retry_after=result.retry_after)
                        for x in batch[i + 1 :]
                    ]
                    break
        return results

    def _send_one(self, client: httpx.Client, m: OutgoingSms) -> SendResult | None:
        """Return the provider's answer for `m`; None when the request went out and no answer
        came back (unless an idempotency key makes a repeat harmless: then try again)."""
        try:
            answer = client.send(self._build(m))
        except ForbiddenDestination as exc:
            log.error("provider %s: %s", self.name, exc)
            return SendResult(m.message_id, Status.FAILED, error_code="forbidden_destination",
                              error_message=str(exc))  # fmt: skip
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Never connected: the provider cannot have the message.
            return SendResult(m.message_id, Status.QUEUED, error_code="unreachable",
                              error_message=f"{self.name} unreachable: {exc.__class__.__name__}")  # fmt: skip
        except httpx.HTTPError as exc:
            if not self.idempotent:
                log.warning("no answer from %s for %s (%s): in doubt", self.name, m.message_id,
                            exc.__class__.__name__)  # fmt: skip
                return None
            return SendResult(m.message_id, Status.QUEUED, error_code="timeout",
                              error_message=f"no answer from {self.name}: {exc.__class__.__name__}")  # fmt: skip
        return self._result(m, answer)

    def _result(self, m: OutgoingSms, answer: httpx.Response) -> SendResult:
        spec = self.response
        try:
            data: Any = answer.json()
        except ValueError:
            data = None
        code = as_text(at_path(data, spec["error_code"])) if spec["error_code"] else None
        words = as_text(at_path(data, spec["error_message"])) if spec["error_message"] else None
        if not answer.is_success:
            words = words or answer.text[:_MAX_ERROR] or answer.reason_phrase
            code = code or f"http_{answer.status_code}"
            if answer.status_code >= 500 or answer.status_code in spec["transient_http"]:
                retry = parse_retry_after(answer.headers.get("retry-after"))
                return SendResult(m.message_id, Status.QUEUED, error_code=code,
                                  error_message=words, retry_after=retry)  # fmt: skip
            return SendResult(m.message_id, Status.FAILED, error_code=code, error_message=words)
        ref = as_text(at_path(data, spec["message_id"])) if spec["message_id"] else None
        if spec["status"]:
            value = as_text(at_path(data, spec["status"]))
            if value in spec["transient"]:
                retry = parse_retry_after(answer.headers.get("retry-after"))
                return SendResult(m.message_id, Status.QUEUED, error_code=code or value,
                                  error_message=words, retry_after=retry)  # fmt: skip
            if value not in spec["accepted"]:
                return SendResult(m.message_id, Status.FAILED, ref,
                                  error_code=code or value or "no_status", error_message=words)  # fmt: skip
        return SendResult(m.message_id, Status.SENT, ref)

    def reconcile(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """A generic HTTP API cannot be asked what it took: return nothing (messages in doubt
        are sent again; an idempotency header lets the provider drop the repeat)."""
        return []


# -- the kind -----------------------------------------------------------------------------------


class HttpKind:
    """The generic HTTP API as a kind of provider: options (with presets), sender, receipts."""

    name = "http"

    def __init__(self, policy: OutboundPolicy | None = None) -> None:
        self.policy = policy or OutboundPolicy()

    def configure(
        self, name: str, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Check HTTP provider options (a preset and its params, or request/response/receipts
        written out); return (settings, secrets). Raises `InvalidInput` naming the option
        (`sms/http_config.py`)."""
        return check_options(name, options, self.policy)

    def build(
        self, provider: Resolved, known_refs: Callable[[Sequence[str]], set[str]]
    ) -> SmsProvider:
        """Return the sender of a configured HTTP provider."""
        return HttpProvider(provider.config.name, provider.settings, provider.secrets, self.policy)

    def authentic(self, provider: Resolved, hook: InboundWebhook) -> bool:
        """Return True if `hook` carries the provider's receipt token or HMAC."""
        receipts = provider.settings.get("receipts")
        if not receipts:
            return False
        auth = receipts["auth"]
        kind = auth["type"]
        if kind == "none":
            return True
        values = {**provider.settings.get("params", {}), **provider.secrets}
        secret = render(auth["secret"], values).encode()
        if kind == "query_token":
            given = parse_qs(hook.query).get(auth["param"], [""])[-1].encode()
            return bool(given) and hmac.compare_digest(given, secret)
        header = hook.headers.get(auth["header"].lower(), "")
        if kind == "header_token":
            return bool(header) and hmac.compare_digest(header.encode(), secret)
        digest = hmac.new(secret, hook.body, hashlib.sha256).digest()
        expected = (
            base64.b64encode(digest).decode() if auth.get("encoding") == "base64" else digest.hex()
        )
        expected = auth.get("prefix", "") + expected
        return bool(header) and hmac.compare_digest(header.strip().encode(), expected.encode())

    def read_receipts(self, provider: Resolved, hook: InboundWebhook) -> list[ProviderReceipt]:
        """Return the receipts of a webhook body (JSON, or a form), mapped by the provider's
        `receipts` description. Raises `InvalidInput` for a body it cannot read."""
        spec = provider.settings["receipts"]
        data = _webhook_data(hook)
        items = at_path(data, spec["items"]) if spec["items"] else data
        if not isinstance(items, list):
            items = [items]
        echoed = echoed_message_id(hook.query)
        out: list[ProviderReceipt] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidInput(f"receipt {i} is not an object", field=f"/{i}")
            raw = (as_text(at_path(item, spec["status"])) or "").lower()
            ref = as_text(at_path(item, spec["message_id"]))
            if not raw or not (ref or echoed):
                raise InvalidInput(
                    f"receipt {i}: {spec['status']} and {spec['message_id']} are required",
                    field=spec["status"] if not raw else spec["message_id"],
                )
            mapped = spec["statuses"].get(raw, "")
            code = as_text(at_path(item, spec["error_code"])) if spec["error_code"] else None
            if code in spec["no_error_codes"]:
                code = None
            client_ref = as_text(at_path(item, spec["client_ref"])) if spec["client_ref"] else None
            out.append(
                ProviderReceipt(
                    provider_message_id=ref,
                    status=parse_status(mapped) if mapped else None,
                    raw_status=raw,
                    message_id=client_ref or echoed,
                    error_code=code,
                    error_message=(
                        as_text(at_path(item, spec["error_message"]))
                        if spec["error_message"]
                        else None
                    ),
                )
            )
        return out


def _webhook_data(hook: InboundWebhook) -> Any:
    kind = hook.headers.get("content-type", "").split(";")[0].strip().lower()
    text = hook.body.decode("utf-8", "replace")
    if kind == "application/x-www-form-urlencoded" or (kind != "application/json" and "=" in text
                                                        and not text.lstrip().startswith(("{", "["))):  # fmt: skip
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput("the receipt body is neither JSON nor a form", field="body") from None
