"""The JSON API (``/v1``): thin handlers that parse input, call one service, format output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from clicktrail.domain.errors import ClicktrailError, InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import receipts
from clicktrail.services.clock import now_us
from clicktrail.services.ports import Store
from clicktrail.services.workspaces import authenticate, is_tls_host_allowed
from clicktrail.web.errors import handle_clicktrail_error, handle_unexpected, problem

MAX_BODY = 5 * 1024 * 1024


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput(f"request body over {MAX_BODY} bytes", field="body")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from None


def build_api(store: Store, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """Return the API application bound to `store`, with the routes of other areas
    (resources, reports, exports, dashboard) that the composition root hands in."""

    def workspace(request: Request) -> Workspace:
        return authenticate(store, request.headers.get("authorization"))

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def post_status(request: Request) -> Response:
        ws = workspace(request)
        body = await _json_body(request)
        items = body.get("receipts") if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                "body must be a non-empty JSON array of {message_id, status, at} "
                "(or an object with a 'receipts' array)",
                field="body",
            )
        if len(items) > receipts.MAX_BATCH:
            raise InvalidInput(
                f"at most {receipts.MAX_BATCH} receipts per request, got {len(items)}",
                field="body",
            )
        skip = request.query_params.get("skip_unknown", "false").lower() in ("1", "true", "yes")
        now = now_us()
        where = [f"/{i}" for i in range(len(items))]
        parsed = receipts.receipts_from_items(items, where, now)
        outcome = receipts.record_receipts(
            store, ws, parsed, where=where, skip_unknown=skip, source="api", now_us=now
        )
        return JSONResponse(
            {"applied": outcome.applied, "unchanged": outcome.unchanged, "unknown": outcome.unknown}
        )

    async def tls_allowed(request: Request) -> Response:
        # Asked by a TLS terminator (Caddy's on-demand TLS) before it gets a certificate for a
        # host: no API key, and the answer says yes or no and nothing else.
        name = request.query_params.get("domain", "").strip()
        if not name:
            return problem(
                400, "invalid_input", "query parameter 'domain' is required", field="domain"
            )
        if is_tls_host_allowed(store, name):
            return JSONResponse({"allowed": True})
        return problem(404, "not_found", "not a registered short domain")

    async def not_found(request: Request, _exc: Exception) -> Response:
        return problem(404, "not_found", f"no route for {request.url.path}")

    async def method_not_allowed(request: Request, _exc: Exception) -> Response:
        return problem(405, "method_not_allowed", f"{request.method} is not allowed here")

    return Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Route("/v1/messages/status", post_status, methods=["POST"]),
            Route("/v1/tls/allowed", tls_allowed, methods=["GET"]),
            *extra_routes,
        ],
        exception_handlers={
            ClicktrailError: handle_clicktrail_error,
            404: not_found,
            405: method_not_allowed,
            Exception: handle_unexpected,
        },
    )
