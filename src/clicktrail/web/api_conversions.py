"""Conversions over HTTP with an API key (``/v1/conversions``): record one or a batch, list,
get one; events' duplicate modes; the rejected log of postbacks, pixels and beacons.

Thin handlers: parse the request, call `services.conversions`, shape the answer. Every call is
scoped to the API key's workspace: another workspace's click ids answer `unknown_click` like ids
that do not exist, its conversions 404. Every answer is checked against its response model in
`web.schemas_conversions` before it is written (`schemas.out_json`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from clicktrail.domain import conversions as rules
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import campaigns, conversion_keys, conversions, keys, listing
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.clock import now_us
from clicktrail.services.conversion_keys import ConversionKey, ConversionKeyStore, KeyKind
from clicktrail.services.conversions import (
    Conversion,
    ConversionFilter,
    ConversionStore,
    Outcome,
    Rejection,
)
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.receipts import parse_time
from clicktrail.web import schemas_conversions as sc
from clicktrail.web.bodies import batch_items, read_json, read_json_value
from clicktrail.web.routing import (
    CAMPAIGN_FILTER,
    CURSOR,
    LIMIT,
    LOCATION,
    TIME,
    AnyOf,
    ApiRoute,
    Op,
    Reply,
    json_body,
    path,
    query,
)
from clicktrail.web.schemas import _Response, out_json, parse_body

# A batch of 1,000 conversions with metadata; a single conversion is far smaller.
MAX_BODY = 8 * 1024 * 1024
MAX_MODE_BODY = 1024


def conversion_out(c: Conversion) -> dict[str, Any]:
    """Return the wire shape of a conversion (`ConversionOut`)."""
    return {
        "id": c.public_id, "event": c.event, "value": c.value, "value_micros": c.value_micros,
        "currency": c.currency, "occurred_at": iso_utc(c.occurred_us),
        "received_at": iso_utc(c.received_us), "click_id": c.click_id,
        "contact": c.contact_external_id or c.contact_phone, "campaign": c.campaign,
        "message": c.message, "link": c.link, "txn": c.txn, "source": c.source,
        "metadata": c.metadata, "updated_at": iso_utc(c.updated_us),
    }  # fmt: skip


def rejection_out(r: Rejection) -> dict[str, Any]:
    """Return the wire shape of a rejected-log row (`RejectedOut`)."""
    return {"at": iso_utc(r.at_us), "source": r.source, "reason": r.reason, "field": r.field,
            "detail": r.detail, "query": r.query, "ip": r.ip}  # fmt: skip


def batch_out(results: list[Outcome]) -> dict[str, Any]:
    """Return the wire shape of a batch's outcomes (`ConversionBatchOut`,
    `TouchpointBatchOut`): one result per item, in order, and how many of each outcome."""
    out = [
        {"outcome": r.outcome, "id": r.id} if r.field is None
        else {"outcome": r.outcome, "id": r.id, "field": r.field, "detail": r.detail}
        for r in results
    ]  # fmt: skip
    return {"results": out, "counts": dict(Counter(r.outcome for r in results))}


def _json(
    model: type[_Response], data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(out_json(model, data), status, headers, media_type="application/json")


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and ("\x00" in value or len(value) > 200):
        raise InvalidInput(f"{name} must be at most 200 characters, without NUL", field=name)
    return value or None


def key_out(k: ConversionKey) -> dict[str, Any]:
    """Return the wire shape of a postback secret or publishable key (`ConversionKeyOut`)."""
    return {"id": k.public_id, "name": k.name, "prefix": k.prefix,
            "default_currency": k.default_currency, "state": "revoked" if k.revoked_us else "active",
            "created_at": iso_utc(k.created_us), "revoked_at": iso_utc(k.revoked_us)}  # fmt: skip


def routes(
    auth: KeyAuthStore,
    store: ConversionStore,
    campaign_store: CampaignStore,
    key_store: ConversionKeyStore,
    *,
    default_region: str | None = None,
) -> list[BaseRoute]:
    """Return the conversion routes over `store` (API keys checked through `auth`; campaign
    filters resolved through `campaign_store`; postback secrets and publishable keys kept in
    `key_store`)."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def record(ws: Workspace, body: Any) -> Response:
        now = now_us()
        items = batch_items(body, "conversions", "conversion")
        if items is not None:
            where = [f"/conversions/{i}/" for i in range(len(items))]
            results = conversions.record_conversions(
                store, ws, items, source="api", now_us=now, where=where, region=default_region
            )
            return _json(sc.ConversionBatchOut, batch_out(results))
        outcome, conv = conversions.record_one(
            store, ws, body, source="api", now_us=now, region=default_region
        )
        assert conv is not None
        data = {"outcome": outcome.outcome, "conversion": conversion_out(conv)}
        if outcome.outcome == "accepted":
            return _json(
                sc.ConversionRecorded, data, 201, {"Location": f"/v1/conversions/{conv.public_id}"}
            )
        return _json(sc.ConversionRecorded, data)

    async def post_conversions(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = await read_json_value(request, MAX_BODY)
        return await run_in_threadpool(record, ws, body)

    def list_conversions(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(_query(request, "limit"))
        campaign = _query(request, "campaign")
        event = _query(request, "event")
        source = _query(request, "source")
        if source is not None and source not in rules.SOURCES:
            raise InvalidInput(f"source must be one of {', '.join(rules.SOURCES)}", field="source")
        since, until = _query(request, "since"), _query(request, "until")
        where = ConversionFilter(
            event=None if event is None else rules.event_name(event),
            campaign_id=None if campaign is None
            else campaigns.get_campaign(campaign_store, ws, campaign).id,
            source=source,
            since_us=None if since is None else parse_time(since, "since", 0),
            until_us=None if until is None else parse_time(until, "until", 0),
        )  # fmt: skip
        page = conversions.list_conversions(store, ws, where, limit, _query(request, "cursor"))
        items = [conversion_out(c) for c in page.items]
        return _json(sc.ConversionPage, {"items": items, "next_cursor": page.next_cursor})

    def get_conversion(request: Request) -> Response:
        ws = workspace(request)
        found = conversions.get_conversion(store, ws, str(request.path_params["conversion"]))
        return _json(sc.ConversionOut, conversion_out(found))

    def list_modes(request: Request) -> Response:
        ws = workspace(request)
        items = [
            {"event": e, "duplicate_mode": m, "updated_at": iso_utc(u)}
            for e, m, u in conversions.event_modes(store, ws)
        ]
        return _json(sc.EventModeList, {"items": items})

    async def set_mode(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = parse_body(sc.EventModeIn, await read_json(request, MAX_MODE_BODY))
        event, now = str(request.path_params["event"]), now_us()
        name, mode = await run_in_threadpool(
            lambda: conversions.set_event_mode(store, ws, event, b.duplicate_mode, now_us=now)
        )
        return _json(
            sc.EventModeOut, {"event": name, "duplicate_mode": mode, "updated_at": iso_utc(now)}
        )

    def list_rejected(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(_query(request, "limit"))
        page = conversions.rejected(store, ws, limit, _query(request, "cursor"))
        items = [rejection_out(r) for r in page.items]
        return _json(sc.RejectedPage, {"items": items, "next_cursor": page.next_cursor})

    def credential_routes(kind: KeyKind, base: str, name: str) -> list[BaseRoute]:
        def list_keys(request: Request) -> Response:
            ws = workspace(request)
            items = [key_out(k) for k in conversion_keys.list_keys(key_store, ws, kind)]
            return _json(sc.ConversionKeyList, {"items": items})

        async def create(request: Request) -> Response:
            ws = await run_in_threadpool(workspace, request)
            b = parse_body(sc.ConversionKeyCreate, await read_json(request, MAX_MODE_BODY))
            made = await run_in_threadpool(
                lambda: conversion_keys.create_key(
                    key_store, ws, kind, b.name, now_us(), default_currency=b.default_currency
                )
            )
            return _json(
                sc.ConversionKeyCreated, {**key_out(made.key), "secret": made.secret}, 201,
                {"Location": f"{base}/{made.key.public_id}"},
            )  # fmt: skip

        def revoke(request: Request) -> Response:
            ws = workspace(request)
            public_id = str(request.path_params[name])
            revoked = conversion_keys.revoke_key(key_store, ws, kind, public_id, now_us())
            return _json(sc.ConversionKeyOut, key_out(revoked))

        label = conversion_keys.NAMES[kind]
        return [
            ApiRoute(base, list_keys, "GET", Op(
                f"List {label}s", "conversions",
                Reply(200, "Oldest first, revoked ones too; never a secret.",
                      sc.ConversionKeyList), errors=(401,))),
            ApiRoute(base, create, "POST", Op(
                f"Create a {label}", "conversions",
                Reply(201, "The new credential with its `secret`: shown this once, stored as "
                      "a hash.", sc.ConversionKeyCreated, LOCATION),
                body=sc.ConversionKeyCreate, errors=(401, 409, 422))),
            ApiRoute(f"{base}/{{{name}}}", revoke, "DELETE", Op(
                f"Revoke a {label}", "conversions",
                Reply(200, "Revoked at once (revoking again changes nothing).",
                      sc.ConversionKeyOut),
                params=(path(name, "Its id, as lists show it."),), errors=(401, 404))),
        ]  # fmt: skip

    return [
        *credential_routes("postback", "/v1/postback-secrets", "postback_secret"),
        *credential_routes("publishable", "/v1/publishable-keys", "publishable_key"),
        ApiRoute("/v1/conversions", post_conversions, "POST", Op(
            "Record conversions", "conversions",
            Reply(200, "A duplicate or replaced conversion (single), or one result per "
                  "conversion (batch).", AnyOf(sc.ConversionRecorded, sc.ConversionBatchOut)),
            description="One conversion object, or `{\"conversions\": [...]}` (up to 1,000). "
            "Each is unique on (event, txn) with a txn, else (event, click id) or (event, "
            "contact), forever; the event's duplicate mode says what a second one does "
            "(docs/conversions.md). A batch answers each item (`accepted`, `replaced`, "
            "`duplicate`, `unknown_click`, `unknown_contact`, `invalid` with `field`); a single "
            "conversion that cannot be stored is a 422 whose `code` is `invalid_input`, "
            "`unknown_click` or `unknown_contact`. Another workspace's click id is "
            "`unknown_click`, like one that does not exist.",
            body=json_body(AnyOf(sc.ConversionIn, sc.ConversionBatchIn)),
            more=(Reply(201, "Stored (single).", sc.ConversionRecorded, LOCATION),))),
        ApiRoute("/v1/conversions", list_conversions, "GET", Op(
            "List conversions", "conversions",
            Reply(200, "A page of conversions, in the order they were stored.",
                  sc.ConversionPage),
            params=(LIMIT, CURSOR, query("event", "Only this event."), CAMPAIGN_FILTER,
                    query("source", "Only from this source.",
                          {"type": "string", "enum": list(rules.SOURCES)}),
                    query("since", "Occurred from this time on (inclusive).", TIME),
                    query("until", "Occurred before this time.", TIME)),
            errors=(401, 404, 422))),
        ApiRoute("/v1/conversions/events", list_modes, "GET", Op(
            "Events' duplicate modes", "conversions",
            Reply(200, "Events with a mode set; others are `ignore`.", sc.EventModeList),
            errors=(401,))),
        ApiRoute("/v1/conversions/events/{event}", set_mode, "PUT", Op(
            "Set an event's duplicate mode", "conversions",
            Reply(200, "The mode now; it applies to conversions arriving from now on.",
                  sc.EventModeOut),
            description="`ignore` (default): a duplicate changes nothing. `count`: without a "
            "txn every conversion counts (with a txn it is still one). `replace`: a duplicate's "
            "value and currency replace the stored ones.",
            params=(path("event", "The event name."),), body=sc.EventModeIn)),
        ApiRoute("/v1/conversions/rejected", list_rejected, "GET", Op(
            "Rejected postbacks, pixels and beacons", "conversions",
            Reply(200, "A page of the rejected log, newest first (bounded: the newest 10,000).",
                  sc.RejectedPage),
            params=(LIMIT, CURSOR), errors=(401, 422))),
        ApiRoute("/v1/conversions/{conversion}", get_conversion, "GET", Op(
            "Get a conversion", "conversions", Reply(200, "The conversion.", sc.ConversionOut),
            params=(path("conversion", "The conversion's id (`cnv_…`)."),), errors=(401, 404))),
    ]  # fmt: skip
