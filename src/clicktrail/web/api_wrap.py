"""The wrap-only API: ``POST /v1/wrap`` and ``POST /v1/wrap/batch`` (docs/providers.md).

Thin handlers: authenticate, validate the body (`web.schemas_wrap`), call
`services.wrapping.wrap_messages` in the thread pool, shape the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import CampaignOptions, Workspace
from clicktrail.services import workspaces, wrapping
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.clock import now_us
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.wrapping import CampaignSpec, WrapItem, WrapOutcome, WrapResult, WrapStore
from clicktrail.web import schemas as s
from clicktrail.web import schemas_wrap as w
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import ApiRoute, Op, Reply, header

MAX_ONE = 1024 * 1024
MAX_BATCH = 64 * 1024 * 1024  # 10,000 items of long texts
IDEMPOTENCY_HEADER = "idempotency-key"


def _json(data: dict[str, Any]) -> Response:
    # orjson: a 10,000-item answer serializes in a few milliseconds instead of tens.
    return Response(orjson.dumps(data), media_type="application/json")


def campaign_of(value: str | w.CampaignSpecIn) -> str | CampaignSpec:
    """The campaign a request names: a reference, or a spec to create it from."""
    if isinstance(value, str):
        return value
    return CampaignSpec(
        name=value.name, slug=value.slug, domain=value.domain, template=value.template,
        link_roles={int(k) - 1: v for k, v in value.link_role.items()},
        link_utm={int(k) - 1: v for k, v in value.link_utm.items()},
        options=CampaignOptions(
            value.smart_encoding, value.shift_table, value.utm_enabled, value.utm,
            value.click_id_param,
        ),
    )  # fmt: skip


def item_of(value: w.WrapItemIn, region: str | None = None) -> WrapItem:
    """The service's item for a request item (`region` is the batch's default)."""
    return WrapItem(
        to=value.to, external_id=value.external_id, region=value.region or region,
        first_name=value.first_name, text=value.text, client_ref=value.client_ref,
    )  # fmt: skip


def wrapped_out(r: WrapResult) -> dict[str, Any]:
    """The wire shape of a wrapped item (`web.schemas_wrap.WrappedOut`)."""
    return {
        "index": r.index, "to": r.to, "external_id": r.external_id, "opted_out": r.opted_out,
        "created": r.created, "message_id": r.message_id, "text": r.text,
        "encoding": r.encoding, "segments": r.segments, "status": r.status,
        "links": [
            {"link": lk.index + 1, "token": lk.token, "short_url": lk.short_url,
             "destination": lk.destination}
            for lk in r.links
        ],
    }  # fmt: skip


def batch_out(outcome: WrapOutcome) -> dict[str, Any]:
    """The wire shape of a wrapped batch (`web.schemas_wrap.WrapBatchOut`)."""
    return {
        "campaign": outcome.campaign.public_id,
        "campaign_slug": outcome.campaign.slug,
        "created": outcome.created,
        "existing": outcome.existing,
        "opted_out": outcome.opted_out,
        "items": [wrapped_out(r) for r in outcome.items],
    }


def routes(
    keys: KeyAuthStore,
    repos: CampaignRepos,
    wraps: WrapStore,
    *,
    default_region: str | None,
) -> list[BaseRoute]:
    """Return the wrap routes over `repos` and `wraps` (API keys checked through `keys`);
    national numbers without a region take `default_region`."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(keys, request.headers.get("authorization"))

    def run(
        ws: Workspace,
        campaign: str | CampaignSpec,
        items: Sequence[WrapItem],
        where: Sequence[str],
        mark_sent: bool,
    ) -> WrapOutcome:
        return wrapping.wrap_messages(
            repos, wraps, ws, campaign=campaign, items=items, where=where, clock=now_us,
            mark_sent=mark_sent, default_region=default_region,
            campaign_field="/campaign",
        )  # fmt: skip

    async def wrap_one(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = s.parse_body(w.WrapIn, await read_json(request, MAX_ONE))
        item = item_of(body)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None:
            if body.client_ref is not None and body.client_ref != key:
                raise InvalidInput(
                    "the Idempotency-Key header and client_ref differ: give one of them",
                    field="client_ref",
                )
            if len(key) > wrapping.MAX_CLIENT_REF or "\x00" in key:
                raise InvalidInput(
                    f"Idempotency-Key must be at most {wrapping.MAX_CLIENT_REF} characters",
                    field="Idempotency-Key",
                )
            item = WrapItem(item.to, item.external_id, item.region, item.first_name, item.text, key)
        outcome = await run_in_threadpool(
            run, ws, campaign_of(body.campaign), [item], [""], body.mark_sent
        )
        return _json(
            {
                **wrapped_out(outcome.items[0]),
                "campaign": outcome.campaign.public_id,
                "campaign_slug": outcome.campaign.slug,
            }
        )

    async def wrap_batch(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        raw = await read_json(request, MAX_BATCH)
        body = await run_in_threadpool(s.parse_body, w.WrapBatchIn, raw)
        items = [item_of(x, body.region) for x in body.items]
        where = [f"/items/{i}" for i in range(len(items))]
        outcome = await run_in_threadpool(
            run, ws, campaign_of(body.campaign), items, where, body.mark_sent
        )
        return _json(await run_in_threadpool(batch_out, outcome))

    return [
        ApiRoute("/v1/wrap", wrap_one, "POST", Op(
            "Wrap one message for your own sender", "wrap",
            Reply(200, "The wrapped message; with `opted_out` no message was made: send "
                  "nothing.", w.WrapOut),
            description="Every URL of `text` becomes a tracked link; the message is stored "
            "(queued until a receipt, or sent with `mark_sent`) and counts in reports once "
            "receipts arrive at `POST /v1/messages/status`. The same campaign, recipient and "
            "`client_ref` (or `Idempotency-Key`) returns the same message; with another text it "
            "is 409 (docs/providers.md).",
            params=(header("Idempotency-Key", "The item's `client_ref`, as a header."),),
            body=w.WrapIn, errors=(401, 404, 409, 422))),
        ApiRoute("/v1/wrap/batch", wrap_batch, "POST", Op(
            "Wrap up to 10,000 messages", "wrap",
            Reply(200, "The wrapped messages, in request order.", w.WrapBatchOut),
            description="All or nothing: any bad item is a 422 naming each item "
            "(`/items/3/to`); nothing is written.",
            body=w.WrapBatchIn, errors=(401, 404, 409, 422))),
    ]  # fmt: skip
