"""Segments over HTTP (docs/segments.md): list them with their sizes, create, show, delete, a
static segment's members, and a segment's export (``/v1/segments``).

Thin handlers: parse, call `services.segments`, shape the answer through
`web.schemas_segments`. Every call is scoped to the API key's workspace.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import exports, keys, segments
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.segments import SegmentRepos, SizedSegment
from clicktrail.web import schemas as s
from clicktrail.web import schemas_segments as sg
from clicktrail.web.api_resources import EXPORT_CONTENT, export_response
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import ApiRoute, Op, Reply, path, query

MAX_BODY = 64 * 1024
MAX_MEMBERS_BODY = 2 * 1024 * 1024  # 10,000 refs of up to 200 characters
SEGMENT = path("segment", "The segment's slug (`engaged`, `at-risk`, `unengaged`, "
               "`never-clicked` or one of yours) or id.")  # fmt: skip


def segment_out(x: SizedSegment) -> sg.SegmentOut:
    """The wire shape of a segment with its size."""
    seg = x.segment
    return sg.SegmentOut(
        id=seg.public_id, slug=seg.slug, name=seg.name,
        kind=seg.kind,  # type: ignore[arg-type]  # one of domain.segments.KINDS
        builtin=seg.builtin, sendable=seg.sendable,
        filter=None if seg.filter is None else sg.SegmentFilterOut(**seg.filter.as_dict()),  # type: ignore[arg-type]
        size=x.size, created_at=iso_utc(seg.created_us) or "",
        updated_at=iso_utc(seg.updated_us) or "",
    )  # fmt: skip


def _param(request: Request, name: str, default: str | None = None) -> str | None:
    value = request.query_params.get(name, default)
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    return value


def routes(auth: KeyAuthStore, repos: SegmentRepos) -> list[BaseRoute]:
    """Return the segment routes: `auth` checks API keys, `repos` keeps segments and reads
    contacts, scores and campaigns."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def ref_of(request: Request) -> str:
        ref = str(request.path_params["segment"])
        if "\x00" in ref:
            raise NotFound("segment not found", field="segment")
        return ref

    def list_segments(request: Request) -> Response:
        ws = workspace(request)
        items = [segment_out(x) for x in segments.sizes(repos, ws, now_us())]
        return JSONResponse(sg.SegmentList(items=items).model_dump(mode="json"))

    async def create_segment(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(sg.SegmentCreate, await read_json(request, MAX_BODY))
        raw = None if b.filter is None else b.filter.model_dump(exclude_none=True)

        def run() -> SizedSegment:
            now = now_us()
            seg = segments.create_segment(
                repos, ws, name=b.name, kind=b.kind, filter=raw, slug=b.slug, now_us=now
            )
            return segments.size_of(repos, ws, seg.slug, now)

        out = segment_out(await run_in_threadpool(run))
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    def get_segment(request: Request) -> Response:
        ws = workspace(request)
        got = segments.size_of(repos, ws, ref_of(request), now_us())
        return JSONResponse(segment_out(got).model_dump(mode="json"))

    def delete_segment(request: Request) -> Response:
        ws = workspace(request)
        segments.delete_segment(repos, ws, ref_of(request), now_us())
        return Response(status_code=204)

    async def change_members(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        ref = ref_of(request)
        b = s.parse_body(sg.MembersChange, await read_json(request, MAX_MEMBERS_BODY))

        def run() -> sg.MembersChanged:
            now = now_us()
            done = segments.change_members(
                repos, ws, ref, add=b.add, remove=b.remove, now_us=now,
                where_add=[f"/add/{i}" for i in range(len(b.add))],
                where_remove=[f"/remove/{i}" for i in range(len(b.remove))],
            )  # fmt: skip
            size = segments.size_of(repos, ws, ref, now).size
            return sg.MembersChanged(added=done.added, removed=done.removed, size=size)

        return JSONResponse((await run_in_threadpool(run)).model_dump())

    def export_segment(request: Request) -> Response:
        ws = workspace(request)
        plan = segments.plan_export(
            repos, ws, ref_of(request), format=_param(request, "format", "csv") or "csv",
            phone=_param(request, "phone", "plain") or "plain", salt=_param(request, "salt"),
            now_us=now_us(),
        )  # fmt: skip
        return export_response(plan)

    export_content = {k: v for k, v in EXPORT_CONTENT.items() if "parquet" not in k}
    return [
        ApiRoute("/v1/segments", list_segments, "GET", Op(
            "List segments with their sizes", "segments",
            Reply(200, "Built-in segments first, then the workspace's, each with its size now.",
                  sg.SegmentList),
            errors=(401,))),
        ApiRoute("/v1/segments", create_segment, "POST", Op(
            "Create a segment", "segments",
            Reply(201, "The segment with its size.", sg.SegmentOut),
            description="A saved filter (`kind` `filter`: every condition given must hold) or "
            "an empty static list (`kind` `static`: add members with "
            "`POST /v1/segments/{segment}/members`). A bad condition is a 422 naming it "
            "(`/filter/no_click_days`); a slug taken is a 409.",
            body=sg.SegmentCreate, errors=(401, 409, 422))),
        ApiRoute("/v1/segments/{segment}", get_segment, "GET", Op(
            "A segment with its size", "segments", Reply(200, "The segment.", sg.SegmentOut),
            params=(SEGMENT,), errors=(401, 404))),
        ApiRoute("/v1/segments/{segment}", delete_segment, "DELETE", Op(
            "Delete a segment", "segments", Reply(204, "Deleted, with its static members."),
            description="Built-in segments, and segments a campaign not sent yet sends to, "
            "cannot be deleted (409).",
            params=(SEGMENT,), errors=(401, 404, 409))),
        ApiRoute("/v1/segments/{segment}/members", change_members, "POST", Op(
            "Add and remove a static segment's members", "segments",
            Reply(200, "How many were added and removed, and the size now.", sg.MembersChanged),
            description="Contacts by phone or external id; all or nothing (an unknown contact "
            "is a 422 naming `/add/3`). A saved filter's members follow its filter (422).",
            params=(SEGMENT,), body=sg.MembersChange, errors=(401, 404, 422))),
        ApiRoute("/v1/segments/{segment}/export", export_segment, "GET", Op(
            "Export a segment's members", "segments",
            Reply(200, "The members now, streamed (columns: docs/segments.md).",
                  export_content),
            params=(
                SEGMENT,
                query("format", "Output format.", {"type": "string", "enum": ["csv", "jsonl"],
                                                   "default": "csv"}),
                query("phone", "`plain`, `hash` (`phone_hash`: HMAC-SHA256 keyed by `salt`) "
                      "or `omit`.", {"type": "string", "enum": list(exports.PHONE_MODES),
                                     "default": "plain"}),
                query("salt", "Secret key of the phone hash (with `phone=hash`)."),
            ),
            errors=(401, 404, 422))),
    ]  # fmt: skip
