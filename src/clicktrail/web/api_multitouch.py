"""Multi-touch attribution over HTTP (docs/attribution.md, "Multi-touch"): credit per channel
and campaign under every model (``GET /v1/attribution/channels``) and the conversion paths
export (``GET /v1/exports/conversion-paths``).

Thin handlers: parse, call `services.multitouch`, shape the answer. Every call is scoped to the
API key's workspace; both are computed when asked (nothing is stored).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.services import exports, keys, multitouch
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.multitouch import MultiTouchStore
from clicktrail.web import schemas_multitouch as smt
from clicktrail.web.api_resources import EXPORT_CONTENT, export_response
from clicktrail.web.routing import SINCE, UNTIL, ApiRoute, Op, Reply, query

HALF_LIFE = query(
    "half_life", "Time-decay half-life: a window like `7d` or `36h`, 1 hour to 90 days "
    "(default 7d).", {"type": "string", "pattern": "^[0-9]{1,6} *[smhdSMHD]$"},
)  # fmt: skip
EXPORT_PARAMS = (
    query("format", "Output format.", {"type": "string", "enum": list(exports.FORMATS),
                                       "default": "csv"}),
    SINCE, UNTIL,
    query("phone", "`plain` phone column, `hash` (a `phone_hash` column: hex HMAC-SHA256 of the "
          "E.164 number keyed by `salt`) or `omit`.",
          {"type": "string", "enum": list(exports.PHONE_MODES), "default": "plain"}),
    query("salt", "Secret key of the phone hash (with `phone=hash`; at least 16 characters)."),
    HALF_LIFE,
)  # fmt: skip


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and ("\x00" in value or len(value) > 200):
        raise InvalidInput(f"{name} must be at most 200 characters, without NUL", field=name)
    return value or None


def routes(auth: KeyAuthStore, store: MultiTouchStore) -> list[BaseRoute]:
    """Return the multi-touch routes over `store` (API keys checked through `auth`)."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def channels(request: Request) -> Response:
        ws = workspace(request)
        half_life = multitouch.half_life_us(_query(request, "half_life"))
        since = exports.time_param(_query(request, "since"), "since")
        until = exports.time_param(_query(request, "until"), "until")
        report = multitouch.channel_report(store, ws, half_life, since, until)
        body = smt.ChannelReportOut.model_validate(report.as_dict())
        return JSONResponse(body.model_dump(mode="json"))

    def paths(request: Request) -> Response:
        ws = workspace(request)
        plan = multitouch.plan_paths_export(
            store, ws, format=_query(request, "format") or "csv", since=_query(request, "since"),
            until=_query(request, "until"), phone=_query(request, "phone") or "plain",
            salt=_query(request, "salt"), half_life=_query(request, "half_life"),
        )  # fmt: skip
        return export_response(plan)

    return [
        ApiRoute("/v1/attribution/channels", channels, "GET", Op(
            "Multi-touch credit per channel and campaign", "attribution",
            Reply(200, "Credit under linear, time-decay, position-based and last-click side by "
                  "side, per channel and per campaign, over the conversions that occurred in "
                  "the range.", smt.ChannelReportOut),
            description="Each conversion's path holds the contact's SMS deliveries, SMS clicks "
            "with a counted verdict and other channels' touchpoints within their windows "
            "(docs/attribution.md, \"Multi-touch\"). Computed when asked, from the touches, "
            "verdicts and windows as they are now.",
            params=(SINCE, UNTIL, HALF_LIFE), errors=(401, 422))),
        ApiRoute("/v1/exports/conversion-paths", paths, "GET", Op(
            "Export conversion paths", "exports",
            Reply(200, "The export, streamed: one row per touch of each conversion's path, in "
                  "order, with its credit under every multi-touch model (a conversion without "
                  "touches: one row without a touch); the time range applies to when "
                  "conversions occurred (columns: docs/exports.md).", EXPORT_CONTENT),
            params=EXPORT_PARAMS, errors=(401, 422))),
    ]  # fmt: skip
