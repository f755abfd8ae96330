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
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
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
    check_keys,
    check_number,
    check_secret,
    check_url,
    echoed_message_id,
)
from clicktrail.sms.retry import parse_retry_after

WEBHOOK_PATH = "/v1/webhooks/http/{name}/status"
BUILT_INS = ("to", "to_digits", "body", "message_id", "status_callback", "encoding", "segments")
OPTIONS = ("preset", "params", "secret_params", "request", "response", "receipts",
           "status_callback", "public_url", "base_url", "rate")  # fmt: skip
REQUEST_KEYS = ("method", "url", "headers", "auth", "body_format", "body", "encoding_names",
                "idempotency_header", "timeout")  # fmt: skip
RESPONSE_KEYS = ("message_id", "status", "accepted", "transient", "error_code", "error_message",
                 "transient_http")  # fmt: skip
RECEIPT_KEYS = ("items", "message_id", "client_ref", "status", "error_code", "error_message",
                "no_error_codes", "statuses", "auth")  # fmt: skip
AUTH_TYPES = ("query_token", "header_token", "hmac_sha256", "none")
# HTTP statuses that mean "not now" rather than "never": throttling, timeouts, and credentials
# or account state (they concern every message, not this one). Every 5xx is transient too.
TRANSIENT_HTTP = (401, 403, 408, 425, 429)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_MAX_ERROR = 500

log = logging.getLogger("clicktrail.providers")


# -- templates ----------------------------------------------------------------------------------


def placeholders(template: Any) -> Iterator[str]:
    """Yield the placeholder names in `template` (a string, or lists and objects of them)."""
    if isinstance(template, str):
        for m in _PLACEHOLDER.finditer(template):
            if m.group(1):
                yield m.group(1)
    elif isinstance(template, dict):
        for value in template.values():
            yield from placeholders(value)
    elif isinstance(template, list):
        for value in template:
            yield from placeholders(value)


def render(template: str, values: Mapping[str, str], escape: Callable[[str], str] = str) -> str:
    """Return `template` with each ``{name}`` replaced by ``escape(values[name])``."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return escape(values[m.group(1)])

    return _PLACEHOLDER.sub(one, template)


def render_body(template: Any, values: Mapping[str, str]) -> Any:
    """Return a JSON body template rendered: strings filled in, other values kept, object
    fields that render to an empty string left out."""
    if isinstance(template, str):
        return render(template, values)
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            rendered = render_body(value, values)
            if rendered != "":
                out[key] = rendered
        return out
    if isinstance(template, list):
        return [render_body(v, values) for v in template]
    return template


def at_path(data: Any, path: str) -> Any:
    """Return the value at a dotted path (``messages.0.message-id``; numbers index lists),
    or None when the path leads nowhere."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


# -- presets ------------------------------------------------------------------------------------


def presets() -> dict[str, dict[str, Any]]:
    """Return the shipped presets by name (``sms/presets/*.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files("clicktrail.sms").joinpath("presets").iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[data["name"]] = data
    return out


# -- configuration checks -----------------------------------------------------------------------


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object", field=field)
    return value


def _string(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    return value


def _strings(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InvalidInput(f"{field} must be a list of strings", field=field)
    return [str(v) for v in value]


def _check_request(req: dict[str, Any]) -> dict[str, Any]:
    check_keys(req, REQUEST_KEYS, "request.")
    method = str(req.get("method", "POST")).upper()
    if method not in ("POST", "PUT", "GET"):
        raise InvalidInput("request.method must be POST, PUT or GET", field="request.method")
    url = _string(req.get("url"), "request.url")
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "{" in parts.netloc:
        raise InvalidInput(
            f"request.url: {url!r} must be an http(s) URL with a fixed host", field="request.url"
        )
    headers = _object(req.get("headers", {}), "request.headers")
    for name, value in headers.items():
        if not _HEADER.fullmatch(name) or not isinstance(value, str):
            raise InvalidInput(f"request.headers: bad header {name!r}", field="request.headers")
    auth = req.get("auth")
    if auth is not None:
        auth = _object(auth, "request.auth")
        kind = auth.get("type")
        if kind == "basic":
            check_keys(auth, ("type", "username", "password"), "request.auth.")
            _string(auth.get("username"), "request.auth.username")
            _string(auth.get("password"), "request.auth.password")
        elif kind == "bearer":
            check_keys(auth, ("type", "token"), "request.auth.")
            _string(auth.get("token"), "request.auth.token")
        else:
            raise InvalidInput("request.auth.type must be basic or bearer", field="request.auth")
    body_format = req.get("body_format", "json")
    if body_format not in ("json", "form"):
        raise InvalidInput("request.body_format must be json or form", field="request.body_format")
    body = req.get("body", {})
    if body_format == "form":
        body = _object(body, "request.body")
        for key, value in body.items():
            if not isinstance(value, str):
                raise InvalidInput(
                    f"request.body.{key}: form fields are strings", field=f"request.body.{key}"
                )
    if method == "GET" and body:
        raise InvalidInput("request.body: a GET request has no body", field="request.body")
    names = _object(req.get("encoding_names", {}), "request.encoding_names")
    for key, value in names.items():
        if key not in ("GSM-7", "UCS-2") or not isinstance(value, str):
            raise InvalidInput(
                "request.encoding_names maps GSM-7 and UCS-2 to strings",
                field="request.encoding_names",
            )
    idem = req.get("idempotency_header")
    if idem is not None and (not isinstance(idem, str) or not _HEADER.fullmatch(idem)):
        raise InvalidInput("request.idempotency_header must be a header name",
                           field="request.idempotency_header")  # fmt: skip
    return {
        "method": method,
        "url": url,
        "headers": headers,
        "auth": auth,
        "body_format": body_format,
        "body": body,
        "encoding_names": names,
        "idempotency_header": idem,
        "timeout": check_number(req.get("timeout", 10), "request.timeout", 1, 120),
    }


def _check_response(resp: dict[str, Any]) -> dict[str, Any]:
    check_keys(resp, RESPONSE_KEYS, "response.")
    out: dict[str, Any] = {}
    for key in ("message_id", "status", "error_code", "error_message"):
        out[key] = _string(resp.get(key), f"response.{key}", required=False)
    out["accepted"] = _strings(resp.get("accepted", []), "response.accepted")
    out["transient"] = _strings(resp.get("transient", []), "response.transient")
    if out["status"] and not out["accepted"]:
        raise InvalidInput("response.accepted: list the status values that mean accepted",
                           field="response.accepted")  # fmt: skip
    transient = resp.get("transient_http", list(TRANSIENT_HTTP))
    if not isinstance(transient, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and 400 <= x < 500 for x in transient
    ):
        raise InvalidInput(
            "response.transient_http must list 4xx statuses (every 5xx is transient)",
            field="response.transient_http",
        )
    out["transient_http"] = transient
    return out


def _check_receipts(rec: dict[str, Any]) -> dict[str, Any]:
    check_keys(rec, RECEIPT_KEYS, "receipts.")
    out: dict[str, Any] = {}
    for key in ("items", "client_ref", "error_code", "error_message"):
        out[key] = _string(rec.get(key), f"receipts.{key}", required=False)
    out["message_id"] = _string(rec.get("message_id"), "receipts.message_id")
    out["status"] = _string(rec.get("status"), "receipts.status")
    out["no_error_codes"] = _strings(rec.get("no_error_codes", []), "receipts.no_error_codes")
    statuses = _object(rec.get("statuses"), "receipts.statuses")
    for raw, mapped in statuses.items():
        if mapped not in ("", "sent", "delivered", "failed", "undelivered"):
            raise InvalidInput(
                f"receipts.statuses.{raw}: {mapped!r} is not sent, delivered, failed, "
                "undelivered or '' (ignore)",
                field=f"receipts.statuses.{raw}",
            )
    out["statuses"] = {str(k).lower(): v for k, v in statuses.items()}
    auth = _object(rec.get("auth"), "receipts.auth")
    kind = auth.get("type")
    if kind not in AUTH_TYPES:
        raise InvalidInput(
            f"receipts.auth.type must be one of {', '.join(AUTH_TYPES)} (none: anyone who "
            "knows the URL may post receipts)",
            field="receipts.auth.type",
        )
    if kind == "query_token":
        check_keys(auth, ("type", "param", "secret"), "receipts.auth.")
        if not isinstance(auth.get("param"), str) or not _PARAM.fullmatch(auth["param"]):
            raise InvalidInput("receipts.auth.param must name a query parameter",
                               field="receipts.auth.param")  # fmt: skip
    elif kind == "header_token":
        check_keys(auth, ("type", "header", "secret"), "receipts.auth.")
    elif kind == "hmac_sha256":
        check_keys(auth, ("type", "header", "secret", "encoding", "prefix"), "receipts.auth.")
        if auth.get("encoding", "hex") not in ("hex", "base64"):
            raise InvalidInput("receipts.auth.encoding must be hex or base64",
                               field="receipts.auth.encoding")  # fmt: skip
    else:
        check_keys(auth, ("type",), "receipts.auth.")
    if kind in ("header_token", "hmac_sha256") and not (
        isinstance(auth.get("header"), str) and _HEADER.fullmatch(auth["header"])
    ):
        raise InvalidInput("receipts.auth.header must be a header name",
                           field="receipts.auth.header")  # fmt: skip
    if kind != "none":
        _string(auth.get("secret"), "receipts.auth.secret")
    out["auth"] = auth
    return out


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
        code = _text(at_path(data, spec["error_code"])) if spec["error_code"] else None
        words = _text(at_path(data, spec["error_message"])) if spec["error_message"] else None
        if not answer.is_success:
            words = words or answer.text[:_MAX_ERROR] or answer.reason_phrase
            code = code or f"http_{answer.status_code}"
            if answer.status_code >= 500 or answer.status_code in spec["transient_http"]:
                retry = parse_retry_after(answer.headers.get("retry-after"))
                return SendResult(m.message_id, Status.QUEUED, error_code=code,
                                  error_message=words, retry_after=retry)  # fmt: skip
            return SendResult(m.message_id, Status.FAILED, error_code=code, error_message=words)
        ref = _text(at_path(data, spec["message_id"])) if spec["message_id"] else None
        if spec["status"]:
            value = _text(at_path(data, spec["status"]))
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
        written out); return (settings, secrets). Raises `InvalidInput` naming the option."""
        check_keys(options, OPTIONS)
        preset_name = options.get("preset")
        spec: dict[str, Any] = {}
        declared: dict[str, Any] = {}
        if preset_name is not None:
            known = presets()
            if preset_name not in known:
                raise InvalidInput(
                    f"preset {preset_name!r} is not one of {', '.join(sorted(known))}",
                    field="preset",
                )
            spec = known[preset_name]
            declared = spec["params"]
            for section in ("request", "response", "receipts"):
                if section in options:
                    raise InvalidInput(
                        f"{section} comes from the preset {preset_name!r}; give params only "
                        "(or no preset and the whole description)",
                        field=section,
                    )
        request = _check_request(_object(options.get("request", spec.get("request")), "request"))
        url_field = "request.url"
        if options.get("base_url"):
            # Another origin for the same API: a regional endpoint, a gateway, a test double.
            base = urlsplit(check_url(options["base_url"], "base_url").rstrip("/"))
            parts = urlsplit(request["url"])
            request["url"] = urlunsplit(
                (base.scheme, base.netloc, base.path + parts.path, parts.query, "")
            )
            url_field = "base_url"
        self.policy.check_url(request["url"], url_field)
        response = _check_response(_object(options.get("response", spec.get("response", {})),
                                           "response"))  # fmt: skip
        raw_receipts = options.get("receipts", spec.get("receipts"))
        receipts = _check_receipts(_object(raw_receipts, "receipts")) if raw_receipts else None

        params = _object(options.get("params", {}), "params")
        secret_names = set(_strings(options.get("secret_params", []), "secret_params"))
        secret_names |= {k for k, v in declared.items() if v.get("secret")}
        settings_params: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for key, value in params.items():
            if not _PARAM.fullmatch(key) or key in BUILT_INS:
                raise InvalidInput(f"params.{key}: not a usable parameter name",
                                   field=f"params.{key}")  # fmt: skip
            if declared and key not in declared:
                raise InvalidInput(
                    f"params.{key}: preset {preset_name!r} takes {', '.join(declared)}",
                    field=f"params.{key}",
                )
            if key in secret_names:
                secrets[key] = check_secret(value, f"params.{key}")
            elif not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InvalidInput(f"params.{key} must be a string", field=f"params.{key}")
            else:
                settings_params[key] = str(value)
        for key, info in declared.items():
            if key not in params and "default" in info:
                settings_params[key] = str(info["default"])
        given = set(settings_params) | set(secrets)
        for key in declared:
            if key not in given:
                raise InvalidInput(f"params.{key} is required by preset {preset_name!r}: "
                                   f"{declared[key].get('help', '')}", field=f"params.{key}")  # fmt: skip
        usable = set(BUILT_INS) | given
        for where, template in (
            ("request", request),
            ("receipts.auth", (receipts or {}).get("auth")),
        ):
            for ph in placeholders(template):
                allowed = usable if where == "request" else given
                if ph not in allowed:
                    raise InvalidInput(
                        f"{where}: placeholder {{{ph}}} is neither a message field "
                        f"({', '.join(BUILT_INS)}) nor one of the params",
                        field=where,
                    )

        callback = options.get("status_callback")
        public = options.get("public_url")
        if callback and public:
            raise InvalidInput("give status_callback or public_url, not both", field="public_url")
        if public:
            callback = check_url(public, "public_url").rstrip("/") + WEBHOOK_PATH.format(name=name)
        settings: dict[str, Any] = {
            "preset": preset_name,
            "request": request,
            "response": response,
            "receipts": receipts,
            "params": settings_params,
        }
        if callback:
            settings["status_callback"] = check_url(callback, "status_callback")
        if options.get("rate") is not None:
            settings["rate"] = check_number(options["rate"], "rate", 0, 10_000)
        return settings, secrets

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
            raw = (_text(at_path(item, spec["status"])) or "").lower()
            ref = _text(at_path(item, spec["message_id"]))
            if not raw or not (ref or echoed):
                raise InvalidInput(
                    f"receipt {i}: {spec['status']} and {spec['message_id']} are required",
                    field=spec["status"] if not raw else spec["message_id"],
                )
            mapped = spec["statuses"].get(raw, "")
            code = _text(at_path(item, spec["error_code"])) if spec["error_code"] else None
            if code in spec["no_error_codes"]:
                code = None
            client_ref = _text(at_path(item, spec["client_ref"])) if spec["client_ref"] else None
            out.append(
                ProviderReceipt(
                    provider_message_id=ref,
                    status=parse_status(mapped) if mapped else None,
                    raw_status=raw,
                    message_id=client_ref or echoed,
                    error_code=code,
                    error_message=(
                        _text(at_path(item, spec["error_message"]))
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
