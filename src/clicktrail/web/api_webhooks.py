"""A workspace's webhook endpoints over HTTP (``/v1/webhook-endpoints``): list, create, get,
change, delete, rotate the secret, show the secret (docs/webhooks.md).

Thin handlers: parse the request, call `services.webhooks`, shape the answer. Every call is
scoped to the API key's workspace: another workspace's endpoint ids answer 404, like ids that
do not exist. A secret is in the answers of create, rotate and `…/secret` only.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import deliveries, keys, listing, webhooks
from clicktrail.services.clock import now_us
from clicktrail.services.deliveries import Attempt, Delivery, DeliveryStore
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.receipts import parse_time
from clicktrail.services.webhooks import Endpoint, EndpointChange, UrlCheck, WebhookStore
from clicktrail.web import schemas as s
from clicktrail.web import schemas_webhooks as sw
from clicktrail.web.bodies import read_body, read_json
from clicktrail.web.routing import (
    CURSOR,
    LIMIT,
    LOCATION,
    ApiRoute,
    Body,
    Op,
    Reply,
    path,
    query,
)  # fmt: skip

MAX_BODY = 8192
ENDPOINT = path("endpoint", "The endpoint's id (`ep_…`), as lists show it.")
DELIVERY = path("delivery", "The delivery's id (`dlv_…`), as an endpoint's deliveries show it.")
STATES = ("pending", "succeeded", "failed")


def delivery_out(d: Delivery) -> sw.DeliveryOut:
    """Return the wire shape of delivery `d`."""
    return sw.DeliveryOut(
        id=d.public_id, endpoint=d.endpoint, event=d.event, type=d.event_type,  # type: ignore[arg-type]
        state=d.state, attempts=d.attempts,  # type: ignore[arg-type]
        next_attempt_at=iso_utc(d.next_attempt_us) if d.state == "pending" else None,
        last_attempt_at=iso_utc(d.last_attempt_us), last_status=d.last_status,
        last_error=d.last_error, created_at=iso_utc(d.created_us) or "",
        completed_at=iso_utc(d.completed_us),
    )  # fmt: skip


def attempt_out(a: Attempt) -> sw.AttemptOut:
    """Return the wire shape of attempt `a`."""
    return sw.AttemptOut(
        attempt=a.attempt, at=iso_utc(a.at_us) or "", status=a.status, error=a.error,
        duration_ms=round(a.duration_us / 1000, 3), response=a.response,
    )  # fmt: skip


def endpoint_out(ep: Endpoint, now: int) -> sw.EndpointOut:
    """Return the wire shape of `ep` (no secret) as it is at `now`."""
    grace = (
        ep.old_secret_until_us if ep.old_secret and (ep.old_secret_until_us or 0) > now else None
    )
    return sw.EndpointOut(
        id=ep.public_id, url=ep.url, description=ep.description, events=list(ep.event_types),  # type: ignore[arg-type]
        humans_only=ep.humans_only, provisional=ep.provisional,
        state="enabled" if ep.enabled else "disabled", disabled_reason=ep.disabled_reason,
        disabled_at=iso_utc(ep.disabled_us), failures=ep.failures,
        failing_since=iso_utc(ep.failing_since_us), previous_secret_until=iso_utc(grace),
        created_at=iso_utc(ep.created_us) or "", updated_at=iso_utc(ep.updated_us) or "",
    )  # fmt: skip


def with_secret(ep: Endpoint, now: int) -> sw.EndpointWithSecret:
    """Return the wire shape of `ep` with its secret."""
    return sw.EndpointWithSecret(**endpoint_out(ep, now).model_dump(), secret=ep.secret)


def routes(
    auth: KeyAuthStore, store: WebhookStore, sent: DeliveryStore, check_url: UrlCheck
) -> list[BaseRoute]:
    """Return the webhook routes: `auth` authenticates, `store` keeps the endpoints, `sent`
    the deliveries, `check_url` is the outbound policy's URL check."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def endpoint_id(request: Request) -> str:
        return str(request.path_params["endpoint"])

    def list_endpoints(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(request.query_params.get("limit"))
        page = webhooks.list_endpoints(store, ws, limit, request.query_params.get("cursor"))
        now = now_us()
        out = sw.EndpointPage(
            items=[endpoint_out(x, now) for x in page.items], next_cursor=page.next_cursor
        )
        return JSONResponse(out.model_dump(mode="json"))

    async def create_endpoint(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sw.EndpointCreate, await read_json(request, MAX_BODY))
        now = now_us()
        ep = await run_in_threadpool(
            lambda: webhooks.create_endpoint(
                store, ws, b.url, list(b.events), now, check_url, description=b.description,
                humans_only=b.humans_only, provisional=b.provisional, secret=b.secret,
            )
        )  # fmt: skip
        return JSONResponse(
            with_secret(ep, now).model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/webhook-endpoints/{ep.public_id}"},
        )

    def get_endpoint(request: Request) -> Response:
        ws = workspace(request)
        ep = webhooks.get_endpoint(store, ws, endpoint_id(request))
        return JSONResponse(endpoint_out(ep, now_us()).model_dump(mode="json"))

    def get_secret(request: Request) -> Response:
        ws = workspace(request)
        ep = webhooks.get_endpoint(store, ws, endpoint_id(request))
        return JSONResponse(with_secret(ep, now_us()).model_dump(mode="json"))

    async def update_endpoint(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sw.EndpointUpdate, await read_json(request, MAX_BODY))
        change = EndpointChange(
            url=b.url, event_types=None if b.events is None else tuple(b.events),
            description=b.description, humans_only=b.humans_only, provisional=b.provisional,
            enabled=b.enabled,
        )  # fmt: skip
        now = now_us()
        ep = await run_in_threadpool(
            webhooks.update_endpoint, store, ws, endpoint_id(request), change, now, check_url
        )
        return JSONResponse(endpoint_out(ep, now).model_dump(mode="json"))

    def delete_endpoint(request: Request) -> Response:
        ws = workspace(request)
        webhooks.delete_endpoint(store, ws, endpoint_id(request))
        return Response(status_code=204)

    async def rotate_secret(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sw.SecretRotate, await read_json(request, MAX_BODY))
        grace = (
            webhooks.DEFAULT_GRACE_US if b.grace is None else keys.parse_duration(b.grace, "grace")
        )
        now = now_us()
        ep = await run_in_threadpool(
            lambda: webhooks.rotate_secret(
                store, ws, endpoint_id(request), now, grace_us=grace, secret=b.secret
            )
        )
        return JSONResponse(with_secret(ep, now).model_dump(mode="json"))

    def list_deliveries(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(request.query_params.get("limit"))
        state = request.query_params.get("state")
        if state is not None and state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
        page = deliveries.list_deliveries(
            sent, store, ws, endpoint_id(request), limit, request.query_params.get("cursor"), state
        )
        out = sw.DeliveryPage(
            items=[delivery_out(d) for d in page.items], next_cursor=page.next_cursor
        )
        return JSONResponse(out.model_dump(mode="json"))

    def get_delivery(request: Request) -> Response:
        ws = workspace(request)
        d, log = deliveries.get_delivery(sent, ws, str(request.path_params["delivery"]))
        out = sw.DeliveryDetail(**delivery_out(d).model_dump(), log=[attempt_out(a) for a in log])
        return JSONResponse(out.model_dump(mode="json"))

    async def replay_delivery(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        await read_body(request, MAX_BODY)  # takes none; a large one is refused as it streams
        delivery = str(request.path_params["delivery"])
        d = await run_in_threadpool(deliveries.replay, sent, ws, delivery, now_us())
        return JSONResponse(delivery_out(d).model_dump(mode="json"))

    async def replay_since(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sw.ReplaySince, await read_json(request, MAX_BODY))
        now = now_us()
        since = parse_time(b.since, "since", now)
        n = await run_in_threadpool(
            deliveries.replay_since, sent, store, ws, endpoint_id(request), since, now
        )
        return JSONResponse(sw.Replayed(deliveries=n).model_dump(mode="json"))

    return [
        ApiRoute("/v1/webhook-endpoints/{endpoint}/deliveries", list_deliveries, "GET", Op(
            "List an endpoint's deliveries", "webhooks",
            Reply(200, "A page of the endpoint's deliveries, newest first.", sw.DeliveryPage),
            params=(ENDPOINT, LIMIT, CURSOR,
                    query("state", "Only deliveries in this state: pending, succeeded, failed.")),
            errors=(401, 404, 422))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}/replay", replay_since, "POST", Op(
            "Send an endpoint's events again", "webhooks",
            Reply(200, "How many deliveries are now due.", sw.Replayed),
            description="Every event of the endpoint's types since `since` is delivered again "
            "now (attempts start over, same `webhook-id`), including events that happened "
            "while the endpoint was disabled.",
            params=(ENDPOINT,), body=sw.ReplaySince, errors=(401, 404, 422))),
        ApiRoute("/v1/webhook-deliveries/{delivery}", get_delivery, "GET", Op(
            "Get a webhook delivery", "webhooks",
            Reply(200, "The delivery and its log: every attempt with its status or error.",
                  sw.DeliveryDetail),
            params=(DELIVERY,), errors=(401, 404))),
        ApiRoute("/v1/webhook-deliveries/{delivery}/replay", replay_delivery, "POST", Op(
            "Replay a webhook delivery", "webhooks",
            Reply(200, "The delivery, pending and due now (attempts start over).",
                  sw.DeliveryOut),
            description="Sent again with the same `webhook-id`, whatever its state; the "
            "endpoint must be enabled for it to go out.",
            params=(DELIVERY,), errors=(401, 404))),
        ApiRoute("/v1/webhook-endpoints", list_endpoints, "GET", Op(
            "List webhook endpoints", "webhooks",
            Reply(200, "A page of the workspace's endpoints, oldest first; never a secret.",
                  sw.EndpointPage),
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/webhook-endpoints", create_endpoint, "POST", Op(
            "Create a webhook endpoint", "webhooks",
            Reply(201, "The new endpoint, enabled, with its signing secret.",
                  sw.EndpointWithSecret, LOCATION),
            description="The URL must be https to a public address (the operator may allow "
            "plain http or private networks); it is checked again at every connection. At "
            "most 50 endpoints per workspace (409).",
            body=sw.EndpointCreate, errors=(401, 409, 422))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}", get_endpoint, "GET", Op(
            "Get a webhook endpoint", "webhooks",
            Reply(200, "The endpoint (never its secret).", sw.EndpointOut),
            params=(ENDPOINT,), errors=(401, 404))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}", update_endpoint, "PATCH", Op(
            "Change a webhook endpoint", "webhooks",
            Reply(200, "The endpoint as it is now.", sw.EndpointOut),
            description="Absent fields are left as they are. `enabled: true` enables a "
            "disabled endpoint again and starts its failure run over.",
            params=(ENDPOINT,), body=sw.EndpointUpdate, errors=(401, 404, 422))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}", delete_endpoint, "DELETE", Op(
            "Delete a webhook endpoint", "webhooks",
            Reply(204, "Deleted, with its deliveries and their log; nothing more is sent."),
            params=(ENDPOINT,), errors=(401, 404))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}/secret", get_secret, "GET", Op(
            "Get a webhook endpoint's secret", "webhooks",
            Reply(200, "The endpoint with its current signing secret.", sw.EndpointWithSecret),
            params=(ENDPOINT,), errors=(401, 404))),
        ApiRoute("/v1/webhook-endpoints/{endpoint}/rotate-secret", rotate_secret, "POST", Op(
            "Rotate a webhook endpoint's secret", "webhooks",
            Reply(200, "The endpoint with its new secret.", sw.EndpointWithSecret),
            description="The old secret keeps signing beside the new one for `grace` (default "
            "1 day, at most 7): each request then carries two signatures in "
            "`webhook-signature`, so receivers can switch without losing one.",
            params=(ENDPOINT,), body=Body({"application/json": sw.SecretRotate}, required=False),
            errors=(401, 404, 409, 422))),
    ]  # fmt: skip
