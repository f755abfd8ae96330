"""Attribution over HTTP (docs/attribution.md): a workspace's and a campaign's settings
(``/v1/attribution``, ``/v1/campaigns/{campaign}/attribution``) and a campaign's conversions
(``/v1/campaigns/{campaign}/report/conversions``).

Thin handlers: parse, call `services.attribution`, shape the answer through
`web.schemas_attribution`. Every call is scoped to the API key's workspace.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import attribution, keys, multitouch
from clicktrail.services.attribution import AttributionStore, CampaignSource
from clicktrail.services.clock import now_us
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.multitouch import MultiTouchStore
from clicktrail.services.reports import find_campaign
from clicktrail.web import schemas as s
from clicktrail.web import schemas_attribution as sat
from clicktrail.web.api_multitouch import HALF_LIFE
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CAMPAIGN, ApiRoute, Op, Reply, flag, query

MAX_BODY = 4096
MULTI_TOUCH = flag(
    "multi_touch", "Add `multi_touch`: the campaign's multi-touch credit under every model "
    "(computed over the workspace's conversions when read; slower).",
)  # fmt: skip


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no", ""):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value in ("1", "true", "yes")


def routes(
    auth: KeyAuthStore, store: AttributionStore, campaigns: CampaignSource,
    multi: MultiTouchStore | None = None,
) -> list[BaseRoute]:  # fmt: skip
    """Return the attribution routes: `auth` checks API keys, `store` keeps settings and
    credits, `campaigns` finds campaigns and their reach; with `multi`, the conversions
    report has the campaign's multi-touch credit (``multi_touch``) when asked for it
    (``?multi_touch=true``)."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def settings_out(ws: Workspace, ref: str | None) -> dict[str, object]:
        campaign = None if ref is None else find_campaign(campaigns, ws, ref)
        body = attribution.view(store, ws, campaign).as_dict()
        return sat.AttributionSettingsOut.model_validate(body).model_dump(mode="json")

    def get_settings(request: Request) -> Response:
        ws = workspace(request)
        return JSONResponse(settings_out(ws, request.path_params.get("campaign")))

    async def put_settings(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        ref = request.path_params.get("campaign")
        b = s.parse_body(sat.AttributionSettingsIn, await read_json(request, MAX_BODY))

        def change() -> dict[str, object]:
            campaign = None if ref is None else find_campaign(campaigns, ws, ref)
            attribution.set_settings(
                store, ws, campaign, model=b.model, click_window=b.click_window,
                delivery_window=b.delivery_window, now_us=now_us(),
            )  # fmt: skip
            return settings_out(ws, ref)

        return JSONResponse(await run_in_threadpool(change))

    def conversions(request: Request) -> Response:
        ws = workspace(request)
        model = request.query_params.get("model") or None
        if model is not None and "\x00" in model:
            raise InvalidInput("model must not contain NUL characters", field="model")
        multi_touch = _flag(request, "multi_touch")
        half_life = multitouch.half_life_us(request.query_params.get("half_life"))
        report = attribution.campaign_conversions(
            store, campaigns, ws, request.path_params["campaign"], model
        )
        out = report.as_dict()
        if multi_touch and multi is not None:
            shares = multitouch.channel_report(multi, ws, half_life)
            out["multi_touch"] = multitouch.campaign_share(shares, report.campaign)
        body = sat.ConversionReportOut.model_validate(out)
        omit = None if "multi_touch" in out else {"multi_touch"}  # absent, not null
        return JSONResponse(body.model_dump(mode="json", exclude=omit))

    settings = sat.AttributionSettingsOut
    model = query(
        "model",
        "Read this model instead of the campaign's own.",
        {"type": "string", "enum": ["last_click", "first_click", "last_touch"]},
    )
    return [
        ApiRoute("/v1/attribution", get_settings, "GET", Op(
            "Get the workspace's attribution settings", "attribution",
            Reply(200, "Settings in force, as stored, and the state of re-attribution.",
                  settings),
            description="Model (`last_click` by default, `first_click`, `last_touch` with "
            "view-through) and windows (click 5 days, delivery 12 hours by default) "
            "(docs/attribution.md).", errors=(401,))),
        ApiRoute("/v1/attribution", put_settings, "PUT", Op(
            "Change the workspace's attribution settings", "attribution",
            Reply(200, "The settings in force now.", settings),
            description="Fields left out stay; `inherit` clears one. A change of a window "
            "re-attributes the workspace's history in the background "
            "(`reattribution_pending` until done); a change of model needs none.",
            body=sat.AttributionSettingsIn, errors=(401, 422))),
        ApiRoute("/v1/campaigns/{campaign}/attribution", get_settings, "GET", Op(
            "Get a campaign's attribution settings", "attribution",
            Reply(200, "Settings in force for the campaign, as stored for it (null: the "
                  "workspace's).", settings),
            params=(CAMPAIGN,), errors=(401, 404))),
        ApiRoute("/v1/campaigns/{campaign}/attribution", put_settings, "PUT", Op(
            "Change a campaign's attribution settings", "attribution",
            Reply(200, "The campaign's settings in force now.", settings),
            description="The campaign's windows decide which of its touches are eligible; "
            "its model is the one its reports read.",
            params=(CAMPAIGN,), body=sat.AttributionSettingsIn, errors=(401, 404, 422))),
        ApiRoute("/v1/campaigns/{campaign}/report/conversions", conversions, "GET", Op(
            "Conversions of a campaign", "attribution",
            Reply(200, "Conversions, rates, revenue, RPM, AOV and time to convert, per link "
                  "too, under the settings the report states.", sat.ConversionReportOut),
            description="Single-touch figures under the report's model, summed from the "
            "stored credits. With `multi_touch=true`, also `multi_touch`: the credit the "
            "campaign's SMS touches get under every multi-touch model (docs/attribution.md, "
            "\"Multi-touch\"; `half_life` sets time decay's). That part is computed when "
            "read, over every conversion of the workspace, so it is left out by default.",
            params=(CAMPAIGN, model, MULTI_TOUCH, HALF_LIFE), errors=(401, 404, 422))),
    ]  # fmt: skip
