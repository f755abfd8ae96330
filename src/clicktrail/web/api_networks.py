"""A workspace's own network (CIDR) lists for bot filtering over HTTP (``/v1/networks``).

Thin handlers: parse the request, call `services.networks`, shape the answer. Every call is
scoped to the API key's workspace: another workspace's lists are never seen nor changed, and
never count for this workspace's requests.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import listing, networks, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.networks import NetworkListStore, RangeInput
from clicktrail.web import schemas as s
from clicktrail.web import schemas_settings as st
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CURSOR, LIMIT, ApiRoute, Op, Reply, path, query

MAX_BODY = 2 * 1024 * 1024  # 10,000 ranges with owners
NETWORK_LIST = path("name", "The network list's name (lowercase letters, digits, `.`, `_`, `-`).")


def _t(us: int) -> str:
    out = iso_utc(us)
    assert out is not None
    return out


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    return value


def routes(keys: KeyAuthStore, lists: NetworkListStore) -> list[BaseRoute]:
    """Return the network-list routes over `lists` (API keys checked through `keys`)."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(keys, request.headers.get("authorization"))

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
            st.NetworkListOut(name=x.name, ranges=x.ranges, kinds=list(x.kinds),
                             created_at=_t(x.created_us), added_at=_t(x.added_us))
            for x in page.items
        ]  # fmt: skip
        body = st.NetworkListPage(items=items, next_cursor=page.next_cursor)
        return JSONResponse(body.model_dump(mode="json"))

    def list_ranges(request: Request) -> Response:
        ws = workspace(request)
        limit, cursor = limit_cursor(request)
        page = networks.list_ranges(lists, ws, name_of(request), limit, cursor)
        items = [
            st.NetworkRangeOut(cidr=r.cidr, kind=r.kind, owner=r.owner, created_at=_t(r.created_us))
            for r in page.items
        ]
        body = st.NetworkRangePage(items=items, next_cursor=page.next_cursor)
        return JSONResponse(body.model_dump(mode="json"))

    async def add_ranges(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        name = name_of(request)
        raw = await read_json(request, MAX_BODY)
        b = s.parse_body(st.NetworkRangesAdd, raw)
        entries = [
            RangeInput(r.cidr, r.kind, r.owner, f"/ranges/{i}") for i, r in enumerate(b.ranges)
        ]
        done = await run_in_threadpool(
            lambda: networks.add_range_entries(
                lists, ws, name, entries, now_us=now_us(), kind=b.kind, owner=b.owner
            )
        )
        out = st.NetworkRangesAdded(
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
        ApiRoute("/v1/networks", list_networks, "GET", Op(
            "List network lists", "networks",
            Reply(200, "A page of the workspace's network lists, by name.", st.NetworkListPage),
            description="A workspace's own CIDR lists: its requests are judged with them on top "
            "of the installation's range file and the bundled dataset (docs/bots.md).",
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/networks/{name}", remove_list, "DELETE", Op(
            "Remove a network list", "networks", Reply(204, "Removed with all its ranges."),
            params=(NETWORK_LIST,), errors=(401, 404))),
        ApiRoute("/v1/networks/{name}/ranges", list_ranges, "GET", Op(
            "List a network list's ranges", "networks",
            Reply(200, "A page of ranges, by CIDR text.", st.NetworkRangePage),
            params=(NETWORK_LIST, LIMIT, CURSOR), errors=(401, 404, 422))),
        ApiRoute("/v1/networks/{name}/ranges", add_ranges, "POST", Op(
            "Add ranges to a network list", "networks",
            Reply(200, "What was added; the list is created when new.", st.NetworkRangesAdded),
            description="All or nothing: a bad range is a 422 naming each item "
            "(`/ranges/3/cidr`) and nothing is written. A range already in the list takes the "
            "new kind and owner. Kinds `hosting`, `cdn`, `crawler` and `scanner` count against "
            "a request (`NET_LISTED`, `NET_HOSTING`); `mobile` and `relay` mark addresses many "
            "people share (carrier NAT), which behavioural rules then treat with care. New "
            "requests use the list within a few seconds; `clicktrail bots reclassify` applies "
            "it to history.",
            params=(NETWORK_LIST,), body=st.NetworkRangesAdd, errors=(401, 409, 422))),
        ApiRoute("/v1/networks/{name}/ranges", remove_range, "DELETE", Op(
            "Remove a range from a network list", "networks", Reply(204, "Removed."),
            params=(NETWORK_LIST, query("cidr", "The range to remove.", required=True)),
            errors=(401, 404, 422))),
    ]  # fmt: skip
