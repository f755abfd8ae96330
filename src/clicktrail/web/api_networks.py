"""A workspace's own network (CIDR) lists for bot filtering over HTTP (``/v1/networks``).

Thin handlers: parse the request, call `services.networks`, shape the answer. Every call is
scoped to the API key's workspace: another workspace's lists are never seen nor changed, and
never count for this workspace's requests.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import listing, networks, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.networks import NetworkListStore, RangeInput
from clicktrail.services.ports import Store
from clicktrail.web import schemas as s
from clicktrail.web.bodies import read_json

MAX_BODY = 2 * 1024 * 1024  # 10,000 ranges with owners


def _t(us: int) -> str:
    out = iso_utc(us)
    assert out is not None
    return out


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    return value


def routes(store: Store, lists: NetworkListStore) -> list[BaseRoute]:
    """Return the network-list routes over `lists` (API keys checked through `store`)."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(store, request.headers.get("authorization"))

    def name_of(request: Request) -> str:
        name = str(request.path_params["name"])
        if "\x00" in name:
            raise NotFound("network list not found", field="list")
        return name

    def limit_cursor(request: Request) -> tuple[int, str | None]:
        return listing.page_limit(_query(request, "limit")), _query(request, "cursor")

    def list_networks(request: Request) -> Response:
        ws = workspace(request)
        page = networks.list_networks(lists, ws, *limit_cursor(request))
        items = [
            s.NetworkListOut(name=x.name, ranges=x.ranges, kinds=list(x.kinds),
                             created_at=_t(x.created_us), added_at=_t(x.added_us))
            for x in page.items
        ]  # fmt: skip
        body = s.NetworkListPage(items=items, next_cursor=page.next_cursor)
        return JSONResponse(body.model_dump(mode="json"))

    def list_ranges(request: Request) -> Response:
        ws = workspace(request)
        limit, cursor = limit_cursor(request)
        page = networks.list_ranges(lists, ws, name_of(request), limit, cursor)
        items = [
            s.NetworkRangeOut(cidr=r.cidr, kind=r.kind, owner=r.owner, created_at=_t(r.created_us))
            for r in page.items
        ]
        body = s.NetworkRangePage(items=items, next_cursor=page.next_cursor)
        return JSONResponse(body.model_dump(mode="json"))

    async def add_ranges(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        name = name_of(request)
        raw = await read_json(request, MAX_BODY)
        b = s.parse_body(s.NetworkRangesAdd, raw)
        entries = [
            RangeInput(r.cidr, r.kind, r.owner, f"/ranges/{i}") for i, r in enumerate(b.ranges)
        ]
        done = await run_in_threadpool(
            lambda: networks.add_range_entries(
                lists, ws, name, entries, now_us=now_us(), kind=b.kind, owner=b.owner
            )
        )
        out = s.NetworkRangesAdded(
            name=done.list_name, added=done.added, updated=done.updated, unchanged=done.unchanged
        )
        return JSONResponse(out.model_dump(mode="json"))

    def remove_list(request: Request) -> Response:
        ws = workspace(request)
        networks.remove_list(lists, ws, name_of(request), now_us=now_us())
        return Response(status_code=204)

    def remove_range(request: Request) -> Response:
        ws = workspace(request)
        cidr = _query(request, "cidr")
        if not cidr:
            raise InvalidInput("cidr is required: the range to remove", field="cidr")
        networks.remove_range(lists, ws, name_of(request), cidr, now_us=now_us())
        return Response(status_code=204)

    return [
        Route("/v1/networks", list_networks, methods=["GET"]),
        Route("/v1/networks/{name}", remove_list, methods=["DELETE"]),
        Route("/v1/networks/{name}/ranges", list_ranges, methods=["GET"]),
        Route("/v1/networks/{name}/ranges", add_ranges, methods=["POST"]),
        Route("/v1/networks/{name}/ranges", remove_range, methods=["DELETE"]),
    ]
