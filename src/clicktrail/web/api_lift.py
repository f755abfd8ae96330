"""Holdout routes of the JSON API (docs/attribution.md, "Holdout and lift"): a campaign's lift
against its holdout, and the power calculator before a send. Thin handlers: parse, call one
service, format.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign
from clicktrail.services import incrementality, keys
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.clock import now_us
from clicktrail.services.incrementality import LiftSource
from clicktrail.services.keys import KeyAuthStore
from clicktrail.web.routing import CAMPAIGN, ApiRoute, Op, Reply, query
from clicktrail.web.schemas_lift import HoldoutSizeOut, LiftOut


def _number(request: Request, name: str, default: float | None = None) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise InvalidInput(f"{name} is required", field=name)
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw[:40]!r}", field=name) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number", field=name)
    return value


def _count(request: Request, name: str) -> int:
    value = _number(request, name)
    if not value.is_integer():
        raise InvalidInput(f"{name} must be a whole number, got {value:g}", field=name)
    return int(value)


def routes(
    auth: KeyAuthStore,
    campaigns: CampaignStore,
    source: LiftSource,
    window_for: Callable[[Campaign], tuple[int, str]] = incrementality.default_window,
) -> list[BaseRoute]:
    """Return the holdout routes: `auth` checks API keys, `campaigns` finds the campaign,
    `source` reads the arms, `window_for` gives a campaign's lift window."""

    async def lift(request: Request) -> Response:
        ws = await run_in_threadpool(keys.authenticate, auth, request.headers.get("authorization"))
        ref = str(request.path_params["campaign"])
        if "\x00" in ref:
            raise NotFound("campaign not found", field="campaign")
        event = request.query_params.get("event") or None
        report = await run_in_threadpool(
            lambda: incrementality.campaign_lift(
                campaigns, source, ws, ref, now_us=now_us(), event=event, window_for=window_for
            )
        )
        return JSONResponse(LiftOut.model_validate(report.as_dict()).model_dump(mode="json"))

    async def holdout_size(request: Request) -> Response:
        await run_in_threadpool(keys.authenticate, auth, request.headers.get("authorization"))
        audience = _count(request, "audience")
        baseline, mde = _number(request, "baseline"), _number(request, "mde")
        alpha, power = _number(request, "alpha", 0.05), _number(request, "power", 0.8)
        plan = await run_in_threadpool(
            lambda: incrementality.holdout_size(audience, baseline, mde, alpha=alpha, power=power)
        )
        return JSONResponse(HoldoutSizeOut(**plan.as_dict()).model_dump(mode="json"))

    return [
        ApiRoute("/v1/campaigns/{campaign}/report/lift", lift, "GET", Op(
            "Lift against the holdout", "reports",
            Reply(200, "Conversion rates of delivered and held-out contacts in the window, "
                  "absolute and relative lift with 95 % intervals, the p-value, revenue per "
                  "recipient with a bootstrap interval, and whether the sample is too small "
                  "(docs/attribution.md, \"Holdout and lift\").", LiftOut),
            description="409 when the campaign has no holdout or has not been sent (its "
            "holdout is drawn when the send starts).",
            params=(CAMPAIGN, query("event", "Count only this conversion event (default: any).")),
            errors=(401, 404, 409, 422))),
        ApiRoute("/v1/holdout-size", holdout_size, "GET", Op(
            "Holdout size for a lift (power calculator)", "reports",
            Reply(200, "The smallest holdout that detects `mde` over `baseline`, or "
                  "`reachable: false`.", HoldoutSizeOut),
            params=(
                query("audience", "Contacts the campaign will reach.",
                      {"type": "integer", "minimum": 2}, required=True),
                query("baseline", "Conversion rate without the campaign (0-1).",
                      {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                      required=True),
                query("mde", "Minimum detectable effect: an absolute lift of the rate.",
                      {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                      required=True),
                query("alpha", "Significance level, two-sided (default 0.05).",
                      {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5}),
                query("power", "Power (default 0.8).",
                      {"type": "number", "minimum": 0.5, "exclusiveMaximum": 1}),
            ),
            errors=(401, 422), database=True)),
    ]  # fmt: skip
