"""Conversions from callers that are not the workspace's own code: affiliate networks'
postbacks (a postback secret) and browsers (the snippet's beacon and the pixel, a publishable
key). docs/conversions.md.

Each request carries a credential instead of an API key, is turned into one conversion
(`postback_item`, `browser_item`) and goes through `services.conversions.record_conversions`
like any other. What differs is the answer's audience: a network's server or a browser, whose
logs nobody reads. So every refusal (a bad or revoked credential, a bad field, an unknown
click) is also written to the workspace's rejected log with the query string (secrets
masked), and raised as the 4xx it is.

Browsers may only name a click id: a publishable key sits in public pages, and letting it look
contacts up by phone or external id would make it an oracle of who is a customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from clicktrail.domain import conversions as rules
from clicktrail.domain.conversions import Source
from clicktrail.domain.errors import ClicktrailError, InvalidInput
from clicktrail.services import conversion_keys
from clicktrail.services.conversion_keys import ConversionKeyStore, KeyKind
from clicktrail.services.conversions import (
    ConversionStore,
    Outcome,
    Rejection,
    raise_for,
    record_conversions,
)

MAX_QUERY = 2048  # bytes of a postback's or pixel's query string
MAX_EXTRA = 16  # parameters beyond the known ones, kept as metadata
# What each query parameter of a postback or pixel means (several spellings networks use).
PARAMS: dict[str, str] = {
    "cid": "click_id", "click_id": "click_id", "ct_cid": "click_id",
    "payout": "value", "value": "value", "amount": "value",
    "currency": "currency",
    "event": "event", "goal": "event",
    "txn": "txn", "order_id": "txn",
    "time": "occurred_at", "ts": "occurred_at",
}  # fmt: skip
CREDENTIALS = ("secret", "key")
# A macro the network did not fill (``{aff_sub}``, ``{sub1}``, ``${click_id}``, ``%7Bsub1%7D``
# decoded): the parameter is taken as absent, except the click id, which is then refused with
# the macro named (the network's link or postback is misconfigured).
UNFILLED = re.compile(r"\$?\{[A-Za-z0-9_.:-]{1,64}\}|\[[A-Za-z0-9_]{1,64}\]|#[A-Za-z0-9_]{1,64}#")
# The rejected log's reasons are outcomes where one fits (`invalid`, `unknown_click`), else the
# error's code (`unauthorized`, `too_large`).
_REASONS = {"invalid_input": "invalid"}
_SECRET_IN_QUERY = re.compile(r"((?:^|&)(?:secret|key)=)[^&]*", re.IGNORECASE)


def _kept(text: str, limit: int) -> str:
    """`text` as the rejected log keeps it: NUL shown as ``\\0`` (PostgreSQL text holds no
    NUL), cut to `limit` characters (its column's size)."""
    return text.replace("\x00", "\\0")[:limit]


def masked_query(query: str) -> str:
    """Return a query string with the values of `secret` and `key` masked, cut to
    `MAX_QUERY` characters (what the rejected log keeps)."""
    return _SECRET_IN_QUERY.sub(r"\1***", query)[:MAX_QUERY]


def postback_item(
    pairs: Sequence[tuple[str, str]],
) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """Return (the conversion of a postback or pixel query, its credential, the parameter
    each of its fields came from: refusals name the parameter the network sent).

    Known parameters (`PARAMS`) become the conversion's fields; others (up to `MAX_EXTRA`: a
    network's sub ids, offer id) its metadata. Raises `InvalidInput` naming a parameter given
    twice, a click id that is an unfilled macro, or too many other parameters.
    """
    item: dict[str, Any] = {}
    extra: dict[str, str] = {}
    names: dict[str, str] = {}
    credential: str | None = None
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise InvalidInput(f"{name}: given twice", field=name)
        seen.add(name)
        if name in CREDENTIALS:
            credential = value
            continue
        field = PARAMS.get(name)
        if UNFILLED.fullmatch(value.strip()):
            if field == "click_id":
                raise InvalidInput(
                    f"{name}: {value[:70]!r} is a macro the network did not fill: check which "
                    "sub id your tracking link puts the click id in (docs/conversions.md)",
                    field=name,
                )
            continue
        if field is None:
            if len(extra) >= MAX_EXTRA:
                raise InvalidInput(f"{name}: more than {MAX_EXTRA} other parameters", field=name)
            extra[name[: rules.MAX_METADATA_KEY]] = value
            names[f"metadata/{name[: rules.MAX_METADATA_KEY]}"] = name
            continue
        if field in item:
            raise InvalidInput(f"{name}: the {field} is given twice", field=name)
        item[field] = value
        names[field] = name
    if extra:
        item["metadata"] = extra
    if "click_id" not in names:
        names["click_id"] = "cid"
    return item, credential, names


def renamed(exc: ClicktrailError, names: Mapping[str, str]) -> ClicktrailError:
    """Return `exc` naming the request's parameter instead of the conversion's field."""
    if exc.field is None or exc.field not in names:
        return exc
    name = names[exc.field]
    message = exc.message
    if message.startswith(exc.field + ":"):
        message = name + message[len(exc.field) :]
    return type(exc)(message, field=name)


def browser_item(body: object) -> tuple[dict[str, Any], str | None]:
    """Return (the conversion of a beacon's JSON body, its publishable key). The body may name a
    click id (`ct_cid` or `click_id`), event, value, currency, txn and flat metadata, nothing
    else (no contact, no time: the browser's clock is not trusted). Raises `InvalidInput`."""
    if not isinstance(body, Mapping):
        raise InvalidInput("body must be a JSON object", field="body")
    allowed = {"key", "ct_cid", "click_id", "event", "value", "currency", "txn", "metadata"}
    for name in body:
        if name not in allowed:
            raise InvalidInput(
                f"{name}: not accepted from a browser (known: {', '.join(sorted(allowed))})",
                field=str(name),
            )
    key = body.get("key")
    item = {k: v for k, v in body.items() if k != "key"}
    return item, key if isinstance(key, str) else None


def record_from(
    store: ConversionStore,
    keys: ConversionKeyStore,
    kind: KeyKind,
    credential: str | None,
    item: Mapping[str, Any] | None,
    *,
    source: Source,
    now_us: int,
    query: str,
    ip: str | None,
    error: ClicktrailError | None = None,
    names: Mapping[str, str] | None = None,
) -> Outcome:
    """Authenticate `credential` (a postback secret or publishable key), record `item` and
    return its outcome (accepted, replaced or duplicate).

    `error` is a refusal found while reading the request (its item is then None); `names`
    maps fields to the parameters they came from (`postback_item`), for refusals. Every
    refusal is written to the rejected log (the workspace's, or with no workspace when the
    credential named none) and raised: `Unauthorized`, `InvalidInput`, `UnknownClick`.
    """
    ws_id: int | None = None

    def refuse(exc: ClicktrailError, reason: str | None = None) -> ClicktrailError:
        exc = renamed(exc, names or {})
        store.record_rejection(
            Rejection(ws_id, now_us, source, reason or _REASONS.get(exc.code, exc.code),
                      None if exc.field is None else _kept(exc.field, 64),
                      _kept(exc.message, 500), _kept(masked_query(query), MAX_QUERY),
                      None if ip is None else ip[:45])
        )  # fmt: skip
        return exc

    if error is not None and (credential is None or not isinstance(error, InvalidInput)):
        raise refuse(error)  # no workspace to tell it to: the operator's log
    try:
        ws, key = conversion_keys.authenticate(keys, kind, credential)
    except ClicktrailError as exc:
        raise refuse(exc) from None
    ws_id = ws.id
    if error is not None or item is None:
        raise refuse(error or InvalidInput("no conversion given", field="body"))
    if kind == "publishable" and "contact" in item:
        raise refuse(InvalidInput("contact: browsers may only name a click id", field="contact"))
    no_currency = item.get("currency") in (None, "")
    if no_currency and item.get("value") not in (None, "") and key.default_currency is not None:
        item = {**item, "currency": key.default_currency}
    (outcome,) = record_conversions(store, ws, [item], source=source, now_us=now_us, where=[""])
    try:
        raise_for(outcome)
    except ClicktrailError as exc:
        raise refuse(exc, outcome.outcome) from None
    return outcome
