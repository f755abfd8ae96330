"""Conversions from outside with no API key: affiliate postbacks (``GET /postback``), the
browser snippet (``GET /ct.js``), its beacon (``POST /v1/conversions/beacon``) and the pixel
(``GET /v1/conversions/pixel.gif``). docs/conversions.md.

Anonymous internet input: the query string is refused past `postbacks.MAX_QUERY` bytes and 64
parameters, a beacon body past 8 KiB or 64 levels of JSON, before anything else is done. The
work is `services.postbacks.record_from`'s; this module reads requests and writes answers.
Every answer says what happened: ``{"outcome": …, "id": …}`` (the pixel: a 1×1 GIF with the
outcome in ``X-Clicktrail-Outcome``), or a 4xx problem (recorded in the rejected log too).
Unknown and other workspaces' click ids answer alike.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from clicktrail.domain.conversions import Source
from clicktrail.domain.errors import ClicktrailError, InvalidInput
from clicktrail.services import postbacks
from clicktrail.services.clock import now_us
from clicktrail.services.conversion_keys import ConversionKeyStore, KeyKind
from clicktrail.services.conversions import ConversionStore
from clicktrail.web import schemas_conversions as sc
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import ApiRoute, Body, Op, Reply, query
from clicktrail.web.schemas import out_json

MAX_BEACON = 8 * 1024
MAX_PARAMS = 64
# A 1×1 transparent GIF (GIF89a, one transparent pixel).
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_CREDENTIAL = re.compile(r"(?:^|&)(?:secret|key)=([^&]{1,100})")
# Answers a browser may read from any page (no cookies are involved: the key is in the body).
_CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}


def snippet() -> bytes:
    """Return the first-party snippet served at ``/ct.js`` (web/ct.js)."""
    return resources.files("clicktrail.web").joinpath("ct.js").read_bytes()


def _recorded(outcome: str, conversion_id: str | None, headers: dict[str, str]) -> Response:
    body = out_json(sc.RecordedOut, {"outcome": outcome, "id": conversion_id})
    return Response(body, 200, headers, media_type="application/json")


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


_Read = tuple[dict[str, Any] | None, str | None, InvalidInput | None, dict[str, str]]


def _read_query(request: Request) -> _Read:
    """(the conversion of the query, its credential, a refusal found reading it, the parameter
    names of its fields)."""
    raw = request.scope.get("query_string", b"")
    text = raw[: postbacks.MAX_QUERY * 2].decode("latin-1")
    if len(raw) > postbacks.MAX_QUERY:
        found = _CREDENTIAL.search(text)
        error = InvalidInput(
            f"query string over {postbacks.MAX_QUERY} bytes ({len(raw)}): not read", field="query"
        )
        return None, found.group(1) if found else None, error, {}
    try:
        pairs = parse_qsl(raw.decode("utf-8", "strict"), keep_blank_values=True,
                          max_num_fields=MAX_PARAMS)  # fmt: skip
        item, credential, names = postbacks.postback_item(pairs)
    except (ValueError, UnicodeDecodeError):
        found = _CREDENTIAL.search(text)
        error = InvalidInput(
            f"query string is not UTF-8 name=value pairs, at most {MAX_PARAMS}", field="query"
        )
        return None, found.group(1) if found else None, error, {}
    except InvalidInput as exc:
        found = _CREDENTIAL.search(text)
        return None, found.group(1) if found else None, exc, {}
    return item, credential, None, names


def routes(store: ConversionStore, keys: ConversionKeyStore) -> list[BaseRoute]:
    """Return the anonymous conversion routes over `store`, credentials checked in `keys`."""
    js = snippet()

    def record(
        request: Request, kind: KeyKind, source: Source, item: dict[str, Any] | None,
        credential: str | None, error: ClicktrailError | None, names: dict[str, str],
    ) -> tuple[str, str | None]:  # fmt: skip
        outcome = postbacks.record_from(
            store, keys, kind, credential, item, source=source, now_us=now_us(),
            query=request.scope.get("query_string", b"").decode("latin-1"), ip=_client(request),
            error=error, names=names,
        )  # fmt: skip
        return outcome.outcome, outcome.id

    async def postback(request: Request) -> Response:
        item, credential, error, names = _read_query(request)
        outcome, conversion_id = await run_in_threadpool(
            record, request, "postback", "postback", item, credential, error, names
        )
        return _recorded(outcome, conversion_id, {"Cache-Control": "no-store"})

    async def pixel(request: Request) -> Response:
        item, credential, error, names = _read_query(request)
        outcome, _id = await run_in_threadpool(
            record, request, "publishable", "pixel", item, credential, error, names
        )
        return Response(
            PIXEL, 200, {**_CORS, "X-Clicktrail-Outcome": outcome}, media_type="image/gif"
        )

    async def beacon(request: Request) -> Response:
        item: dict[str, Any] | None = None
        credential: str | None = None
        error: ClicktrailError | None = None
        try:
            body = orjson.loads(await read_json(request, MAX_BEACON))
            if isinstance(body, dict) and isinstance(body.get("key"), str):
                credential = body["key"]  # a refusal of the body goes to its workspace's log
            item, credential = postbacks.browser_item(body)
        except orjson.JSONDecodeError:
            error = InvalidInput("body is not valid JSON", field="body")
        except ClicktrailError as exc:
            error = exc
        outcome, conversion_id = await run_in_threadpool(
            record, request, "publishable", "beacon", item, credential, error, {}
        )
        return _recorded(outcome, conversion_id, _CORS)

    async def ct_js(_request: Request) -> Response:
        return Response(
            js, 200, {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
            media_type="text/javascript; charset=utf-8",
        )  # fmt: skip

    postback_params = (
        query(
            "cid", "The click id the network got from the tracking link (or `click_id`, `ct_cid`)."
        ),
        query("payout", "Decimal amount (or `value`, `amount`)."),
        query("currency", "ISO 4217 (default: the credential's default currency)."),
        query("event", "Event name (or `goal`)."),
        query("txn", "Transaction or order id (or `order_id`)."),
        query("time", "When it happened: Unix seconds or ISO 8601 (or `ts`)."),
    )
    return [
        ApiRoute("/postback", postback, "GET", Op(
            "Affiliate postback", "conversions", Reply(200, "Recorded.", sc.RecordedOut),
            description="Called by affiliate networks (TUNE, Everflow: presets in "
            "docs/conversions.md), not people: `secret` is a postback secret, not an API key. "
            "Other parameters (up to 16) are kept as metadata; an unfilled macro such as "
            "`{sub2}` counts as absent. At most 2,048 bytes and 64 parameters. A refusal is a "
            "problem naming the parameter, and a row of the rejected log.",
            params=(*postback_params, query("secret", "A postback secret of the workspace.")),
            errors=(401, 422), auth=False)),
        ApiRoute("/ct.js", ct_js, "GET", Op(
            "The first-party snippet", "conversions",
            Reply(200, "JavaScript for landing pages (docs/conversions.md#the-browser-snippet).",
                  {"text/javascript": {"type": "string"}}),
            errors=(), auth=False, database=False)),
        ApiRoute("/v1/conversions/beacon", beacon, "POST", Op(
            "Browser beacon", "conversions", Reply(200, "Recorded.", sc.RecordedOut),
            description="Sent by the snippet (`navigator.sendBeacon`: JSON as text/plain): `key` "
            "(a publishable key), `ct_cid`, `event`, `value`, `currency`, `txn`, `metadata`. "
            "Click ids only, never contacts. At most 8 KiB.",
            body=Body({"text/plain": {"type": "string"},
                       "application/json": {"type": "object"}}),
            errors=(401, 422), auth=False)),
        ApiRoute("/v1/conversions/pixel.gif", pixel, "GET", Op(
            "Conversion pixel", "conversions",
            Reply(200, "A 1×1 GIF; `X-Clicktrail-Outcome` says what happened.",
                  {"image/gif": {"type": "string", "format": "binary"}},
                  {"X-Clicktrail-Outcome": {"description": "accepted, replaced or duplicate",
                                            "schema": {"type": "string"}}}),
            description="For pages that cannot run the snippet: the postback's parameters "
            "with `key` (a publishable key) instead of `secret`.",
            params=(*postback_params, query("key", "A publishable key.")),
            errors=(401, 422), auth=False)),
    ]  # fmt: skip
