"""Configuration of the generic HTTP provider (`sms/http.py`): the shipped presets and the
checks of a provider's options (request, response, receipts, params), each refusal naming the
option (docs/providers.md has the reference)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clicktrail.domain.errors import InvalidInput
from clicktrail.outbound import OutboundPolicy
from clicktrail.services.providers import check_keys, check_number, check_secret, check_url
from clicktrail.sms.http_templates import placeholders

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
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


# -- presets ------------------------------------------------------------------------------------


def presets() -> dict[str, dict[str, Any]]:
    """Return the shipped presets by name (``sms/presets/*.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files("clicktrail.sms").joinpath("presets").iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[data["name"]] = data
    return out


# -- checks -------------------------------------------------------------------------------------


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


def check_options(
    name: str, options: Mapping[str, Any], policy: OutboundPolicy
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check the options of HTTP provider `name` (a preset and its params, or
    request/response/receipts written out) under the operator's outbound `policy`; return
    (settings, secrets). Raises `InvalidInput` naming the option."""
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
    policy.check_url(request["url"], url_field)
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
