"""Report routes of the JSON API (docs/reports.md): the campaign report, the full report,
the recipients who clicked, and the comparison of campaigns. Thin handlers: parse, call one
service, format.

``GET /v1/campaigns/{campaign}/report`` is the campaign report; the full report is
``GET /v1/campaigns/{campaign}/report/full`` (the same keys plus the full sections).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import reports
from clicktrail.services.clock import now_us
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.receipts import parse_time
from clicktrail.services.reports import ReportSource
from clicktrail.services.workspaces import authenticate
from clicktrail.web import api_variants
from clicktrail.web import schemas_reports as r
from clicktrail.web.routing import (
    CAMPAIGN,
    CURSOR,
    LIMIT,
    SINCE,
    UNTIL,
    ApiRoute,
    Op,
    Reply,
    query,
)  # fmt: skip

DEFAULT_LIMIT = 50


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise InvalidInput(f"limit must be a whole number, got {raw!r}", field="limit")
    return int(raw)


def _time(raw: str | None, field: str) -> int | None:
    return None if raw is None or raw.strip() == "" else parse_time(raw, field, 0)


async def _out(model: type[BaseModel], data: dict[str, Any]) -> Response:
    # Validated against its wire shape: a report that drifts from the documented shape fails
    # here (and in tests) instead of changing the API silently. In the thread pool: a busy full
    # report takes about 2 ms to validate, which the event loop (the redirect's too) should not
    # wait for.
    body = await run_in_threadpool(lambda: model.model_validate(data).model_dump_json())
    return Response(body, media_type="application/json")


def routes(keys: KeyAuthStore, queries: ReportSource) -> list[BaseRoute]:
    """Return the report routes; `keys` authenticates API keys, `queries` answers."""

    def workspace(request: Request) -> Workspace:
        # A database lookup (and a write of the key's last use): in the thread pool, never on
        # the event loop the redirect shares.
        return authenticate(keys, request.headers.get("authorization"))

    async def campaign_report(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        ref = request.path_params["campaign"]
        report = await run_in_threadpool(lambda: reports.campaign_report(queries, ws, ref))
        return await _out(r.CampaignReportOut, report.as_dict())

    async def full_report(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        ref = request.path_params["campaign"]
        report = await run_in_threadpool(
            lambda: reports.full_report(queries, ws, ref, now_us=now_us())
        )
        return await _out(r.FullReportOut, report.as_dict())

    async def recipients(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        q = request.query_params
        ref = request.path_params["campaign"]
        limit = _limit(q.get("limit"))
        page = await run_in_threadpool(
            lambda: reports.recipients_page(
                queries, ws, ref, search=q.get("search"), cursor=q.get("cursor") or None,
                limit=limit,
            )
        )  # fmt: skip
        return await _out(r.RecipientsPageOut, page.as_dict())

    async def compare(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        q = request.query_params
        since, until = _time(q.get("since"), "since"), _time(q.get("until"), "until")
        rows = await run_in_threadpool(
            lambda: reports.compare_campaigns(queries, ws, since_us=since, until_us=until)
        )
        return await _out(r.ComparisonList, {"items": [row.as_dict() for row in rows]})

    return [
        ApiRoute("/v1/campaigns/{campaign}/report", campaign_report, "GET", Op(
            "Campaign report", "reports",
            Reply(200, "Delivery and click counts, bot-filtered and raw.", r.CampaignReportOut),
            params=(CAMPAIGN,), errors=(401, 404))),
        ApiRoute("/v1/campaigns/{campaign}/report/full", full_report, "GET", Op(
            "Full campaign report", "reports",
            Reply(200, "The report with timing, per-link, per-device, country and bot sections "
                  "(docs/reports.md).", r.FullReportOut),
            params=(CAMPAIGN,), errors=(401, 404))),
        ApiRoute("/v1/campaigns/{campaign}/recipients", recipients, "GET", Op(
            "Recipients who clicked", "reports",
            Reply(200, "A page of recipients with their clicks (docs/reports.md).",
                  r.RecipientsPageOut),
            params=(CAMPAIGN, query("search", "Phone or external id contains."), LIMIT, CURSOR),
            errors=(401, 404, 422))),
        ApiRoute("/v1/reports/compare", compare, "GET", Op(
            "Compare campaigns", "reports",
            Reply(200, "CTR and time to click per campaign (docs/reports.md).", r.ComparisonList),
            params=(SINCE, UNTIL))),
        *api_variants.routes(keys, queries),
    ]  # fmt: skip
