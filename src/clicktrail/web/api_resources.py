"""The resources of the JSON API: what the CLI does, over HTTP (``/v1``).

Thin handlers: parse the request, call one service, shape the answer with `web.schemas`.
Every handler authenticates first and every service call is scoped to the key's workspace.
Handlers run in Starlette's thread pool (sync endpoints, or `run_in_threadpool` once the
body is read) so database work never blocks the event loop the redirect shares.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, cast

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound, Problem
from clicktrail.domain.models import CampaignOptions, Domain, Workspace
from clicktrail.domain.variants import Variant
from clicktrail.services import (
    campaigns,
    contacts,
    exports,
    holdouts,
    listing,
    segments,
    workspaces,
)
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.clock import now_us
from clicktrail.services.exports import ClickEvent, ExportSource, MessageRecord, iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.listing import CampaignView, ContactList, ContactView, Listing
from clicktrail.services.ports import SmsProvider
from clicktrail.services.segments import SegmentRepos
from clicktrail.services.workspaces import WorkspaceStore
from clicktrail.web import schemas as s
from clicktrail.web.bodies import SERVER_MAX_BODY, read_json, stream_body
from clicktrail.web.routing import (
    CAMPAIGN,
    CAMPAIGN_FILTER,
    CONTACT,
    CURSOR,
    LIMIT,
    LOCATION,
    SINCE,
    UNTIL,
    ApiRoute,
    Body,
    Op,
    Reply,
    flag,
    path,
    query,
)  # fmt: skip

MAX_BODY = 1024 * 1024  # JSON bodies
MAX_IMPORT = SERVER_MAX_BODY  # CSV uploads (256 MiB); spooled to disk past 8 MiB
# How the import's options are written here, for its error messages.
IMPORT_SPELLING = contacts.Spelling(
    skip_invalid="?skip_invalid=true", encoding="e.g. ?encoding=latin-1",
    allow_empty="?allow_empty=true",
)  # fmt: skip
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def export_response(plan: exports.ExportPlan) -> StreamingResponse:
    """Return the streamed answer of a planned export (a download, never cached)."""
    return StreamingResponse(
        exports.stream(plan),
        media_type=plan.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{plan.filename}"',
            "Cache-Control": "no-store",
        },
    )


EXPORT_PARAMS = (
    query("format", "Output format.", {"type": "string", "enum": list(exports.FORMATS),
                                       "default": "csv"}),
    CAMPAIGN_FILTER, SINCE, UNTIL,
    query("phone", "`plain` phone column, `hash` (a `phone_hash` column: hex HMAC-SHA256 of the "
          "E.164 number keyed by `salt`) or `omit`.",
          {"type": "string", "enum": list(exports.PHONE_MODES), "default": "plain"}),
    query("salt", "Secret key of the phone hash (with `phone=hash`; at least 16 characters)."),
)  # fmt: skip
EXPORT_CONTENT = {
    "text/csv": {"type": "string"},
    "application/jsonl": {"type": "string"},
    "application/vnd.apache.parquet": {
        "type": "string", "contentMediaType": "application/vnd.apache.parquet"
    },
}  # fmt: skip
MESSAGE_STATUSES = ["queued", "sending", "sent", "delivered", "failed", "undelivered", "cancelled",
                    "skipped", "unknown"]  # fmt: skip
VERDICTS = ["human", "preview", "scanner", "automation", "probe", "suspect"]


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status, headers=headers)


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    return value


def _flag(request: Request, name: str) -> bool:
    value = (_query(request, name) or "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false", field=name)


def _path(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if "\x00" in value:
        raise NotFound(f"{name} not found", field=name)
    return value


# -- shaping ------------------------------------------------------------------------------------


def domain_out(d: Domain) -> s.DomainOut:
    """The wire shape of a domain."""
    return s.DomainOut(
        host=d.host, scheme=d.scheme, port=d.port, path_prefix=d.path_prefix,
        base_url=d.base_url, fallback_url=d.fallback_url,
    )  # fmt: skip


def contact_out(c: ContactView) -> s.ContactOut:
    """The wire shape of a contact."""
    return s.ContactOut(
        phone=c.phone, external_id=c.external_id, first_name=c.first_name,
        attributes=c.attributes, opted_out=c.opted_out, created_at=_t(c.created_us),
        updated_at=_t(c.updated_us),
    )  # fmt: skip


def list_out(x: ContactList) -> s.ContactListOut:
    """The wire shape of a contact list."""
    return s.ContactListOut(name=x.name, members=x.members, created_at=_t(x.created_us))


def campaign_out(v: CampaignView) -> s.CampaignOut:
    """The wire shape of a campaign."""
    c = v.campaign
    o = c.options
    return s.CampaignOut(
        id=c.public_id, slug=c.slug, name=c.name, status=c.status, template=c.template,
        domain=v.domain, list=v.list_name, segment=v.segment,
        links=[s.LinkOut(link=lk.index + 1, url=lk.url, role=lk.role, utm=lk.utm) for lk in c.links],
        options=s.CampaignOptionsOut(
            smart_encoding=o.smart_encoding, shift_table=o.shift_table,
            utm_enabled=o.utm_enabled, utm=o.utm, click_id_param=o.click_id_param,
            subs=o.subs,
            holdout=None if o.holdout is None else s.HoldoutOut(
                share=o.holdout.share, seed=o.holdout.seed, stratify=o.holdout.stratify
            ),
        ),
        created_at=_t(v.created_us), sent_at=iso_utc(v.sent_us),
    )  # fmt: skip


def message_out(m: MessageRecord) -> s.MessageOut:
    """The wire shape of a message."""
    return s.MessageOut(
        id=m.message_id, campaign=m.campaign_id, campaign_slug=m.campaign_slug, to=m.phone,
        external_id=m.external_id, body=m.body, encoding=m.encoding, segments=m.segments,
        status=cast(Any, m.status), provider=m.provider,
        provider_message_id=m.provider_message_id, error_code=m.error_code,
        queued_at=_t(m.queued_us), sent_at=iso_utc(m.sent_us),
        delivered_at=iso_utc(m.delivered_us), failed_at=iso_utc(m.failed_us),
        status_at=_t(m.status_us),
    )  # fmt: skip


def click_out(e: ClickEvent) -> s.ClickOut:
    """The wire shape of a request on a tracked link."""
    return s.ClickOut(
        id=e.click_id, at=_t(e.at_us), campaign=e.campaign_id, campaign_slug=e.campaign_slug,
        message=e.message_id, link=e.link, link_url=e.link_url,
        link_role=e.link_role, destination=e.destination, external_id=e.external_id,
        phone=e.phone, method=e.method, is_click=e.is_click, verdict=e.verdict, score=e.score,
        reasons=list(e.reasons), final=e.final, ip=e.ip, user_agent=e.user_agent,
    )  # fmt: skip


def _t(us: int) -> str:
    out = iso_utc(us)
    assert out is not None
    return out


# -- routes -------------------------------------------------------------------------------------


class ResourceRepos(CampaignRepos, SegmentRepos, Protocol):
    """The repositories the resource routes read, by area (`bootstrap.Container`): API keys,
    workspaces and their domains, contacts and campaigns."""

    @property
    def keys(self) -> KeyAuthStore:
        """API keys: every handler authenticates first."""
        ...

    @property
    def workspaces(self) -> WorkspaceStore:
        """Workspaces and their short domains."""
        ...


def routes(
    repos: ResourceRepos,
    pages: Listing,
    export_source: ExportSource,
    provider: Callable[..., SmsProvider],
) -> list[BaseRoute]:
    """Return the resource routes over `repos`, paged reads `pages`, `export_source` and the
    SMS `provider` that campaign sends go through."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(repos.keys, request.headers.get("authorization"))

    def limit_cursor(request: Request) -> tuple[int, str | None]:
        return listing.page_limit(_query(request, "limit")), _query(request, "cursor")

    # -- workspace and domains

    def get_workspace(request: Request) -> Response:
        ws = workspace(request)
        return _json(s.WorkspaceOut(id=ws.public_id, slug=ws.slug, name=ws.name, demo=ws.is_demo))

    def list_domains(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_domains(pages, ws, *limit_cursor(request))
        return _json(
            s.DomainPage(items=[domain_out(d) for d in page.items], next_cursor=page.next_cursor)
        )

    async def create_domain(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        body = s.parse_body(s.DomainCreate, await read_json(request, MAX_BODY))
        d = await run_in_threadpool(
            lambda: workspaces.add_domain(
                repos.workspaces,
                ws,
                body.host,
                now_us(),
                path_prefix=body.prefix,
                scheme=body.scheme,
                fallback_url=body.fallback_url,
            )
        )
        return _json(domain_out(d), 201, {"Location": f"/v1/domains/{d.host}"})

    def get_domain(request: Request) -> Response:
        ws = workspace(request)
        return _json(domain_out(listing.get_domain(repos.workspaces, ws, _path(request, "host"))))

    # -- contacts and lists

    def list_contacts(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_contacts(
            repos.contacts, pages, ws, *limit_cursor(request), list_name=_query(request, "list")
        )
        return _json(
            s.ContactPage(items=[contact_out(c) for c in page.items], next_cursor=page.next_cursor)
        )

    def get_contact(request: Request) -> Response:
        ws = workspace(request)
        return _json(contact_out(listing.get_contact(pages, ws, _path(request, "contact"))))

    def list_lists(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_contact_lists(pages, ws, *limit_cursor(request))
        return _json(
            s.ContactListPage(items=[list_out(x) for x in page.items], next_cursor=page.next_cursor)
        )

    async def import_contacts(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        region = _query(request, "region") or None
        list_name = _query(request, "list") or None
        encoding = _query(request, "encoding") or "utf-8-sig"
        skip = _flag(request, "skip_invalid")
        allow_empty = _flag(request, "allow_empty")
        if list_name is not None and len(list_name) > 200:
            raise InvalidInput("list name is over 200 characters", field="list")
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as fh:
            async for part in stream_body(request, MAX_IMPORT):
                fh.write(part)
            fh.seek(0)

            def run() -> contacts.ImportResult:
                parsed = contacts.parse_contacts_csv(
                    cast(BinaryIO, fh), name="body", region=region, encoding=encoding,
                    spelling=IMPORT_SPELLING,
                )  # fmt: skip
                return contacts.import_contacts(
                    repos.contacts, ws, parsed, name="body", skip_invalid=skip, list_name=list_name,
                    now_us=now_us(), spelling=IMPORT_SPELLING, allow_empty=allow_empty,
                )  # fmt: skip

            result = await run_in_threadpool(run)
        return _json(
            s.ImportOut(
                rows=result.rows,
                created=result.created,
                updated=result.updated,
                duplicates=result.duplicates,
                rejected=[s.RejectedRow(line=r.line, reason=r.reason) for r in result.rejected],
            )
        )

    # -- campaigns

    def list_campaigns(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_campaigns(pages, ws, *limit_cursor(request))
        return _json(
            s.CampaignPage(
                items=[campaign_out(v) for v in page.items], next_cursor=page.next_cursor
            )
        )

    async def create_campaign(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(s.CampaignCreate, await read_json(request, MAX_BODY))
        if b.template is None and b.variants is None:  # as when `template` was required
            missing = Problem("/template", "Field required (or give variants)")
            raise InvalidInput("invalid request body: /template: Field required", field=missing.field, problems=[missing])  # fmt: skip

        def run() -> CampaignView:
            now = now_us()
            seg = None
            if b.segment is not None:
                seg = segments.campaign_audience(repos, ws, b.segment, now)
            cp = campaigns.create_campaign(
                repos, ws, name=b.name, template=b.template or "", slug=b.slug,
                domain_host=b.domain, variant_seed=b.variant_seed,
                variants=None if b.variants is None else [
                    Variant(v.name, v.template, v.share) for v in b.variants
                ],
                list_name=b.list, link_roles={int(k) - 1: v for k, v in b.link_role.items()},
                link_utm={int(k) - 1: v for k, v in b.link_utm.items()},
                options=CampaignOptions(
                    b.smart_encoding, b.shift_table, b.utm_enabled, b.utm, b.click_id_param,
                    {str(k): v for k, v in b.subs.items()},
                    holdouts.holdout_spec(
                        b.holdout.share, b.holdout.seed, b.holdout.stratify
                    ) if b.holdout else None,
                ),
                now_us=now, segment=seg,
            )  # fmt: skip
            return pages.campaign_view(cp.id)

        view = await run_in_threadpool(run)
        return _json(
            campaign_out(view), 201, {"Location": f"/v1/campaigns/{view.campaign.public_id}"}
        )

    def get_campaign(request: Request) -> Response:
        ws = workspace(request)
        return _json(
            campaign_out(
                listing.campaign_view(repos.campaigns, pages, ws, _path(request, "campaign"))
            )
        )

    async def change_campaign(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(s.CampaignChange, await read_json(request, MAX_BODY))
        ref = _path(request, "campaign")

        def run() -> CampaignView:
            cp = campaigns.set_subs(
                repos.campaigns, ws, ref, {str(k): v for k, v in b.subs.items()}
            )
            return pages.campaign_view(cp.id)

        return _json(campaign_out(await run_in_threadpool(run)))

    def preview(request: Request) -> Response:
        ws = workspace(request)
        cp = campaigns.get_campaign(repos.campaigns, ws, _path(request, "campaign"))
        p = campaigns.preview_campaign(repos, ws, cp, _query(request, "contact") or None)
        cost = {
            name: s.CostOut(encoding=c.encoding, segments=c.segments, units=c.units)
            for name, c in (
                ("cost", p.cost), ("template", p.template), ("untracked", p.untracked),
                ("worst_case", p.worst_case),
            )
        }  # fmt: skip
        return _json(
            s.PreviewOut(
                contact_phone=p.contact_phone,
                body=p.body,
                smart_encoding=s.SmartEncodingOut.model_validate(p.smart_encoding),
                links=[s.PreviewLinkOut.model_validate(lk) for lk in p.links],
                warnings=p.warnings,
                **cost,
            )
        )

    # -- messages and clicks

    def list_messages(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_messages(
            repos.campaigns, pages, ws, *limit_cursor(request),
            campaign=_query(request, "campaign") or None, status=_query(request, "status") or None,
        )  # fmt: skip
        return _json(
            s.MessagePage(items=[message_out(m) for m in page.items], next_cursor=page.next_cursor)
        )

    def get_message(request: Request) -> Response:
        ws = workspace(request)
        return _json(message_out(listing.get_message(pages, ws, _path(request, "message"))))

    def list_clicks(request: Request) -> Response:
        ws = workspace(request)
        page = listing.list_clicks(
            repos.campaigns, pages, ws, *limit_cursor(request),
            campaign=_query(request, "campaign") or None, since=_query(request, "since"),
            until=_query(request, "until"), verdict=_query(request, "verdict") or None,
        )  # fmt: skip
        return _json(
            s.ClickPage(items=[click_out(e) for e in page.items], next_cursor=page.next_cursor)
        )

    # -- exports

    def export(what: str) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            ws = workspace(request)
            plan = exports.plan_export(
                repos.campaigns, export_source, ws, what, format=_query(request, "format") or "csv",
                campaign=_query(request, "campaign") or None, since=_query(request, "since"),
                until=_query(request, "until"), phone=_query(request, "phone") or "plain",
                salt=_query(request, "salt") or None,
            )  # fmt: skip
            return export_response(plan)

        return handler

    return [
        ApiRoute("/v1/workspace", get_workspace, "GET", Op(
            "The API key's workspace", "workspace", Reply(200, "The workspace.", s.WorkspaceOut),
            errors=(401,))),
        ApiRoute("/v1/domains", list_domains, "GET", Op(
            "List short domains", "domains", Reply(200, "A page of domains, by host.", s.DomainPage),
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/domains", create_domain, "POST", Op(
            "Register a short domain", "domains",
            Reply(201, "The new domain.", s.DomainOut, LOCATION), body=s.DomainCreate,
            errors=(401, 409, 422))),
        ApiRoute("/v1/domains/{host}", get_domain, "GET", Op(
            "Get a short domain", "domains", Reply(200, "The domain.", s.DomainOut),
            params=(path("host", "The host."),), errors=(401, 404))),
        ApiRoute("/v1/contacts", list_contacts, "GET", Op(
            "List contacts", "contacts", Reply(200, "A page of contacts, by phone.", s.ContactPage),
            params=(LIMIT, CURSOR, query("list", "Only members of this list.")),
            errors=(401, 404, 422))),
        ApiRoute("/v1/contacts/import", import_contacts, "POST", Op(
            "Import contacts from CSV", "contacts", Reply(200, "What the import did.", s.ImportOut),
            description="The body is a CSV file with a `phone` column and optional "
            "`external_id`, `first_name` and attribute columns (as `clicktrail contacts "
            "import`). All or nothing: any bad row is a 422 naming each line, unless "
            "`skip_invalid=true`; a header without data rows is a 422 unless `allow_empty=true`.",
            params=(
                query("region", "ISO country of numbers written without +country code."),
                flag("skip_invalid", "Import the good rows and list the rejected ones."),
                flag("allow_empty", "Accept a file with a header and no data rows (imports "
                     "nothing)."),
                query("list", "Also add the contacts to this list (created when new)."),
                query("encoding", "Text encoding of the file (default utf-8)."),
            ),
            body=Body({"text/csv": {"type": "string"}}), errors=(401, 413, 422))),
        ApiRoute("/v1/contacts/{contact}", get_contact, "GET", Op(
            "Get a contact", "contacts", Reply(200, "The contact.", s.ContactOut),
            params=(CONTACT,), errors=(401, 404))),
        ApiRoute("/v1/lists", list_lists, "GET", Op(
            "List contact lists", "contacts",
            Reply(200, "A page of lists, by name.", s.ContactListPage), params=(LIMIT, CURSOR))),
        ApiRoute("/v1/campaigns", list_campaigns, "GET", Op(
            "List campaigns", "campaigns",
            Reply(200, "A page of campaigns, newest first.", s.CampaignPage),
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/campaigns", create_campaign, "POST", Op(
            "Create a campaign", "campaigns",
            Reply(201, "The new draft campaign.", s.CampaignOut, LOCATION), body=s.CampaignCreate,
            errors=(401, 404, 409, 422))),
        ApiRoute("/v1/campaigns/{campaign}", get_campaign, "GET", Op(
            "Get a campaign", "campaigns", Reply(200, "The campaign.", s.CampaignOut),
            params=(CAMPAIGN,), errors=(401, 404))),
        ApiRoute("/v1/campaigns/{campaign}", change_campaign, "PATCH", Op(
            "Change a campaign", "campaigns",
            Reply(200, "The campaign as it is now.", s.CampaignOut),
            description="Sets or clears the link macros `{sub1}` … `{sub5}` (`subs`: a value "
            "sets one, null or \"\" clears it, the others stay). Messages wrapped from then on "
            "carry the new values; messages already wrapped keep theirs, and a send already "
            "running keeps the values it started with (docs/conversions.md).",
            params=(CAMPAIGN,), body=s.CampaignChange, errors=(401, 404, 422))),
        ApiRoute("/v1/campaigns/{campaign}/preview", preview, "GET", Op(
            "Preview a campaign", "campaigns",
            Reply(200, "The message one recipient would get and what tracking costs.",
                  s.PreviewOut),
            description="Tokens shown are freshly drawn and not stored.",
            params=(CAMPAIGN,
                    query("contact", "Phone or external id (default: the first of the audience).")),
            errors=(401, 404))),
        # POST/GET /v1/campaigns/{campaign}/send: web/api_sending.py (sending jobs)
        ApiRoute("/v1/messages", list_messages, "GET", Op(
            "List messages", "messages", Reply(200, "A page of messages, oldest first.", s.MessagePage),
            params=(LIMIT, CURSOR, CAMPAIGN_FILTER,
                    query("status", "Only messages in this status.",
                          {"type": "string", "enum": MESSAGE_STATUSES})),
            errors=(401, 404, 422))),
        ApiRoute("/v1/messages/{message}", get_message, "GET", Op(
            "Get a message", "messages", Reply(200, "The message.", s.MessageOut),
            params=(path("message", "The message id (`msg_…`)."),), errors=(401, 404))),
        ApiRoute("/v1/clicks", list_clicks, "GET", Op(
            "List clicks", "clicks",
            Reply(200, "A page of requests on tracked links, oldest first.", s.ClickPage),
            description="Every request is listed, bots included: `is_click` is false for HEAD "
            "probes, `verdict` says how it was judged (docs/bots.md).",
            params=(LIMIT, CURSOR, CAMPAIGN_FILTER, SINCE, UNTIL,
                    query("verdict", "Only requests with this verdict.",
                          {"type": "string", "enum": VERDICTS})),
            errors=(401, 404, 422))),
        ApiRoute("/v1/exports/clicks", export("clicks"), "GET", Op(
            "Export click events", "exports",
            Reply(200, "The export, streamed (columns: docs/exports.md).", EXPORT_CONTENT),
            params=EXPORT_PARAMS, errors=(401, 404, 422))),
        ApiRoute("/v1/exports/messages", export("messages"), "GET", Op(
            "Export messages", "exports",
            Reply(200, "The export, streamed; the time range applies to when messages were "
                  "queued.", EXPORT_CONTENT),
            params=EXPORT_PARAMS, errors=(401, 404, 422))),
        ApiRoute("/v1/exports/conversions", export("conversions"), "GET", Op(
            "Export conversion credits", "exports",
            Reply(200, "The export, streamed: each conversion's credit under every attribution "
                  "model (docs/attribution.md); the time range applies to when conversions "
                  "occurred, the campaign to where the credit went.", EXPORT_CONTENT),
            params=EXPORT_PARAMS, errors=(401, 404, 422))),
    ]  # fmt: skip
