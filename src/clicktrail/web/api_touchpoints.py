"""Touchpoints over HTTP with an API key (``POST /v1/touchpoints``): other channels' touches,
one or a batch (docs/touchpoints.md).

A thin handler: parse the request, call `services.touchpoints`, shape the answer. The body is
read against its limit; its structure (an object, a non-empty ``touchpoints`` array of at most
1,000) refuses the whole request, while each item's own faults get its own outcome. Every call
is scoped to the API key's workspace: another workspace's contacts are `unknown_contact`.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from clicktrail.domain.models import Workspace
from clicktrail.services import keys, touchpoints
from clicktrail.services.clock import now_us
from clicktrail.services.conversions import raise_for
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.touchpoints import TouchpointStore
from clicktrail.web import schemas_touchpoints as st
from clicktrail.web.api_conversions import batch_out
from clicktrail.web.bodies import batch_items, read_json_value
from clicktrail.web.routing import AnyOf, ApiRoute, Op, Reply, json_body
from clicktrail.web.schemas import _Response, out_json

# A batch of 1,000 touches with metadata; a single touch is far smaller.
MAX_BODY = 8 * 1024 * 1024


def _json(model: type[_Response], data: Any, status: int = 200) -> Response:
    return Response(out_json(model, data), status, media_type="application/json")


def routes(
    auth: KeyAuthStore, store: TouchpointStore, *, default_region: str | None = None
) -> list[BaseRoute]:
    """Return the touchpoint route over `store` (API keys checked through `auth`)."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def record(ws: Workspace, body: Any) -> Response:
        now = now_us()
        items = batch_items(body, "touchpoints", "touchpoint")
        if items is not None:
            where = [f"/touchpoints/{i}/" for i in range(len(items))]
            results = touchpoints.record_touchpoints(
                store, ws, items, now_us=now, where=where, region=default_region
            )
            return _json(st.TouchpointBatchOut, batch_out(results))
        (outcome,) = touchpoints.record_touchpoints(
            store, ws, [body], now_us=now, where=[""], region=default_region
        )
        raise_for(outcome)
        data = {"outcome": outcome.outcome, "id": outcome.id}
        return _json(st.TouchpointRecorded, data, 201 if outcome.outcome == "accepted" else 200)

    async def post_touchpoints(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = await read_json_value(request, MAX_BODY)
        return await run_in_threadpool(record, ws, body)

    return [
        ApiRoute("/v1/touchpoints", post_touchpoints, "POST", Op(
            "Record touchpoints of other channels", "touchpoints",
            Reply(200, "A duplicate touch (single), or one result per touchpoint (batch).",
                  AnyOf(st.TouchpointRecorded, st.TouchpointBatchOut)),
            description="One touchpoint object, or `{\"touchpoints\": [...]}` (up to 1,000): "
            "touches of other channels (email, paid social, web, …) for multi-touch "
            "attribution (docs/touchpoints.md). A touch with a `touch_id` is stored once per "
            "workspace and id, forever. A batch answers each item (`accepted`, `duplicate`, "
            "`unknown_contact`, `invalid` with `field`); a body that is not an object, a "
            "`touchpoints` that is not a non-empty array or one over 1,000 refuse the whole "
            "request. A single touchpoint that cannot be stored is a 422 whose `code` is "
            "`invalid_input` or `unknown_contact`. Another workspace's contact is "
            "`unknown_contact`, like one that does not exist.",
            body=json_body(AnyOf(st.TouchpointIn, st.TouchpointBatchIn)),
            more=(Reply(201, "Stored (single).", st.TouchpointRecorded),))),
    ]  # fmt: skip
