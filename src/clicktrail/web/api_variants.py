"""A/B variant routes of the JSON API (docs/experiments.md): a campaign's variants with their
cost, and the report per variant. Thin handlers: parse, call one service, format.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services import keys, variants
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.reports import ReportSource, find_campaign
from clicktrail.web.routing import CAMPAIGN, ApiRoute, Op, Reply
from clicktrail.web.schemas_variants import VariantOut, VariantReportOut, VariantsOut


def routes(auth: KeyAuthStore, source: ReportSource) -> list[BaseRoute]:
    """Return the variant routes (mounted with the report routes): `auth` checks API keys,
    `source` finds the campaign and counts per variant."""

    def _campaign(request: Request) -> tuple[Workspace, Campaign]:
        ws = keys.authenticate(auth, request.headers.get("authorization"))
        ref = str(request.path_params["campaign"])
        if "\x00" in ref:
            raise NotFound("campaign not found", field="campaign")
        cp = find_campaign(source, ws, ref)
        if cp.options.variants is None:
            raise InvalidInput(f"campaign {cp.slug!r} has no variants", field="campaign")
        return ws, cp

    async def show(request: Request) -> Response:
        _, cp = await run_in_threadpool(_campaign, request)
        spec = cp.options.variants
        assert spec is not None
        costs = variants.variant_costs(cp)
        out = VariantsOut(
            campaign=cp.slug, seed=spec.seed,
            variants=[
                VariantOut(name=v.name, share=v.share, template=v.template, encoding=c.encoding,
                           segments=c.segments, units=c.units)
                for v, c in zip(spec.variants, costs, strict=True)
            ],
        )  # fmt: skip
        return JSONResponse(out.model_dump(mode="json"))

    async def report(request: Request) -> Response:
        def run() -> dict[str, object]:
            ws, cp = _campaign(request)
            return variants.variant_report(source, ws, cp)

        body = await run_in_threadpool(run)
        return JSONResponse(VariantReportOut.model_validate(body).model_dump(mode="json"))

    return [
        ApiRoute("/v1/campaigns/{campaign}/variants", show, "GET", Op(
            "Campaign variants", "campaigns",
            Reply(200, "The variants, their shares and what each template costs "
                  "(docs/experiments.md).", VariantsOut),
            description="422 when the campaign has no variants.",
            params=(CAMPAIGN,), errors=(401, 404, 422))),
        ApiRoute("/v1/campaigns/{campaign}/variants/report", report, "GET", Op(
            "Report per variant", "reports",
            Reply(200, "Delivered, clickers, CTR with Wilson intervals, each variant against "
                  "the control, P(best), the sample-ratio check (docs/experiments.md).",
                  VariantReportOut),
            description="422 when the campaign has no variants.",
            params=(CAMPAIGN,), errors=(401, 404, 422))),
    ]  # fmt: skip
