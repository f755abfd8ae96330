"""Bot classification over HTTP: finish a campaign's classification early
(``POST /v1/campaigns/{campaign}/bots/finalize``).

A thin handler: authenticate, find the campaign in the API key's workspace (another
workspace's campaign is not found), call `services.clicks.finalize_campaign`, answer the count.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import NotFound
from clicktrail.services import campaigns, clicks, workspaces
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.clicks import ClickPipelineStore
from clicktrail.services.clock import now_us
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.ports import RequestClassifier
from clicktrail.web import schemas as s
from clicktrail.web.routing import CAMPAIGN, ApiRoute, Op, Reply


def routes(
    keys: KeyAuthStore,
    campaign_store: CampaignStore,
    click_store: ClickPipelineStore,
    classifier: RequestClassifier,
) -> list[BaseRoute]:
    """Return the bot-classification routes over the stored clicks `click_store` of the
    campaigns of `campaign_store`, judging with `classifier` (API keys checked through
    `keys`)."""

    def finalize(request: Request) -> Response:
        ws = workspaces.authenticate(keys, request.headers.get("authorization"))
        ref = str(request.path_params["campaign"])
        if "\x00" in ref:
            raise NotFound("campaign not found", field="campaign")
        cp = campaigns.get_campaign(campaign_store, ws, ref)
        done = clicks.finalize_campaign(click_store, classifier, cp.id, now_us())
        return JSONResponse(s.FinalizedOut(campaign=cp.slug, finalized=done).model_dump())

    async def finalize_endpoint(request: Request) -> Response:
        return await run_in_threadpool(finalize, request)

    return [
        ApiRoute("/v1/campaigns/{campaign}/bots/finalize", finalize_endpoint, "POST", Op(
            "Finalize bot verdicts now", "bots",
            Reply(200, "How many requests got their final verdict.", s.FinalizedOut),
            description="Gives every stored request of the campaign its final bot verdict now "
            "(behaviour windows included) instead of after the settle window "
            "(`bot_settle_seconds`). Later requests are judged with these as neighbours but "
            "cannot change them.",
            params=(CAMPAIGN,), errors=(401, 404))),
    ]  # fmt: skip
