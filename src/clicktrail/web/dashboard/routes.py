"""The dashboard: server-rendered pages under ``/dashboard``, assets under ``/static/dashboard``.

Thin handlers like the API's: each checks the session, calls one reports service and renders a
template. Jinja2 autoescaping is on for every template, so user agents, URLs, names and reasons
(attacker-controlled, some of them) are shown as text, never as markup; a strict
Content-Security-Policy (scripts and styles from this server only, no inline script) is the
second line of defence.

Pages: ``/dashboard/`` campaigns, ``/dashboard/campaigns/{ref}`` report (delivery, click timing,
links, humans vs bots), ``/dashboard/campaigns/{ref}/recipients`` per-recipient table with search
and paging, ``/dashboard/campaigns/{ref}/requests`` the raw request log (user agents, IPs,
verdicts and reasons), ``/dashboard/webhooks`` the webhook endpoints (a disabled one with why)
and their latest deliveries; ``/dashboard/login`` and ``/dashboard/logout``.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from clicktrail import __version__
from clicktrail.domain.automations import describe
from clicktrail.domain.errors import (
    ClicktrailError,
    NotFound,
    StorageUnavailable,
    TooLarge,
    Unauthorized,
)
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services import variants
from clicktrail.services.attribution import AttributionStore
from clicktrail.services.automation_runs import RunStore, list_runs
from clicktrail.services.automations import (
    MAX_AUTOMATIONS,
    AutomationStore,
    get_automation,
    list_automations,
)
from clicktrail.services.bots import ClickStore
from clicktrail.services.campaigns import CampaignStore
from clicktrail.services.deliveries import DeliveryStore
from clicktrail.services.incrementality import LiftReport
from clicktrail.services.keys import KeyAuthStore, authenticate, hash_key, workspace_for_hash
from clicktrail.services.multitouch import MultiTouchStore
from clicktrail.services.reports import ReportSource
from clicktrail.services.segments import SizedSegment
from clicktrail.services.webhooks import WebhookStore
from clicktrail.web.bodies import read_body
from clicktrail.web.dashboard import views
from clicktrail.web.dashboard.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    Signer,
)
from clicktrail.web.dashboard.webhooks import webhooks_view
from clicktrail.web.errors import RETRY_AFTER_S, TITLES, status_of
from clicktrail.web.redirect import Message, Receive, Scope, Send

PREFIX = "/dashboard"
STATIC = "/static/dashboard"
MAX_FORM = 16 * 1024
RUNS_SHOWN = 100  # an automation page shows its latest runs (the API pages through all)
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]

# A page: sync, run in the thread pool (its queries never hold the event loop).
Handler = Callable[[Request, Workspace, Session], Response]


def templates() -> Environment:
    """Return the Jinja2 environment of the dashboard (autoescape on, undefined names fail)."""
    env = Environment(
        loader=PackageLoader("clicktrail.web.dashboard", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=views.num, pct=views.pct, times=views.times, when=views.when, duration=views.duration
    )
    env.globals.update(
        static=STATIC, prefix=PREFIX, version=__version__, workspace=None, session=None, nav=""
    )
    return env


class _SecurityHeaders:
    """Adds the security headers (and no-store) to every dashboard response."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *SECURITY_HEADERS,
                    (b"cache-control", b"no-store"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _local_next(value: str | None) -> str:
    """Return `value` when it is a dashboard path on this server, else the dashboard home
    (never an open redirect: no scheme, no host, no ``//``, no backslash)."""
    if not value or "\\" in value:
        return PREFIX + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(PREFIX + "/") or "//" in value:
        return PREFIX + "/"
    return value


async def _form(request: Request) -> dict[str, str]:
    """Return the fields of an urlencoded form body (first value of each); {} for one that is
    not a form. Raises `TooLarge` (413) for a body over `MAX_FORM` bytes, read no further."""
    body = await read_body(request, MAX_FORM)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items()}


def _cross_site(request: Request) -> bool:
    # Browsers say where a request comes from; a cross-site POST is never ours (defence in
    # depth: SameSite=Strict cookies and the form tokens already stop it).
    return request.headers.get("sec-fetch-site", "same-origin") == "cross-site"


def routes(
    keys: KeyAuthStore,
    campaign_store: CampaignStore,
    click_store: ClickStore,
    queries: ReportSource,
    *,
    secret: bytes,
    credits: AttributionStore | None = None,
    lift: Callable[[Workspace, Campaign], LiftReport | None] | None = None,
    multi: MultiTouchStore | None = None,
    segment_sizes: Callable[[Workspace], list[SizedSegment]] | None = None,
    automations: AutomationStore | None = None,
    hooks: tuple[WebhookStore, DeliveryStore] | None = None,
    runs: RunStore | None = None,
) -> list[BaseRoute]:
    """Return the dashboard's routes: the pages under ``/dashboard`` and their assets under
    ``/static/dashboard``. `keys` checks logins, `queries` answers the reports and `credits`
    the conversions (attribution), `lift` a campaign's lift against its holdout (None without
    one), `multi` the multi-touch credit a campaign page shows when asked
    (``?multi_touch=1``: it is computed over every conversion of the workspace), `automations`
    the automations page (none without it) and `runs` each rule's page with its runs, the stored
    requests come from `click_store` (of `campaign_store`), `secret` signs session cookies
    (see `session.load_secret`); `segment_sizes` lists the workspace's segments with their
    sizes (the Segments page; None: no such page); `hooks` are the webhook endpoints and
    their deliveries (the Webhooks page)."""
    env = templates()
    signer = Signer(secret)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(request_path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    async def current(request: Request) -> tuple[Workspace, Session] | None:
        session = signer.load(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        # A database lookup: in the thread pool, never on the event loop the redirect shares.
        ws = await run_in_threadpool(workspace_for_hash, keys, session.key_hash)
        if ws is None or ws.public_id != session.workspace:
            return None  # the key was revoked or expired (or the cookie names another workspace)
        return ws, session

    def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            found = await current(request)
            if found is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303
                )
            return await run_in_threadpool(handler, request, *found)

        return endpoint

    def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name, value, max_age=age, path=PREFIX, httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )  # fmt: skip

    def login_form(
        request: Request, *, error: str = "", status: int = 200, next_url: str = ""
    ) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = render(
            request, "login.html", status, error=error, token=signer.login_token(nonce),
            next_url=_local_next(next_url or request.query_params.get("next")),
        )  # fmt: skip
        set_cookie(request, response, LOGIN_COOKIE, nonce, 3600)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            if await current(request) is not None:
                return RedirectResponse(_local_next(request.query_params.get("next")), 303)
            return login_form(request)
        form = await _form(request)
        next_url = _local_next(form.get("next"))
        if _cross_site(request) or not signer.check_login_token(
            request.cookies.get(LOGIN_COOKIE), form.get("token")
        ):
            return login_form(
                request, status=403, next_url=next_url,
                error="The form expired. Please sign in again.",
            )  # fmt: skip
        key = form.get("key", "").strip()
        try:
            ws = await run_in_threadpool(authenticate, keys, f"Bearer {key}")
        except Unauthorized:
            return login_form(
                request, status=401, next_url=next_url,
                error="That key is not a valid API key of any workspace.",
            )  # fmt: skip
        response = RedirectResponse(next_url, status_code=303)
        session = signer.new_session(ws.public_id, hash_key(key))
        set_cookie(request, response, SESSION_COOKIE, signer.dump(session), SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def logout(request: Request) -> Response:
        found = await current(request)
        form = await _form(request)
        if found is not None and (
            _cross_site(request) or not secrets.compare_digest(form.get("csrf", ""), found[1].csrf)
        ):
            return render(
                request, "error.html", 403, workspace=found[0], session=found[1],
                title="Forbidden", message="This form did not come from this dashboard.",
            )  # fmt: skip
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    def campaigns(request: Request, ws: Workspace, session: Session) -> Response:
        q = request.query_params
        listing = views.campaign_list(
            queries, ws, since=q.get("since", "")[:10], until=q.get("until", "")[:10]
        )
        return render(
            request, "campaigns.html", workspace=ws, session=session, c=listing, nav="campaigns"
        )

    def segment_list(request: Request, ws: Workspace, session: Session) -> Response:
        if segment_sizes is None:
            raise NotFound("there is no segments page here", field="path")
        rows = [views.segment_row(x) for x in segment_sizes(ws)]
        return render(
            request, "segments.html", workspace=ws, session=session, rows=rows, nav="segments"
        )

    def campaign(request: Request, ws: Workspace, session: Session) -> Response:
        q = request.query_params
        report = views.report_page(queries, ws, request.path_params["ref"], credits)
        lifted = views.lift_view(lift(ws, report.campaign)) if lift else None
        split = (
            variants.variant_report(queries, ws, report.campaign)
            if report.campaign.options.variants is not None
            else None
        )
        asked = q.get("multi_touch", "").lower() in ("1", "true", "yes")
        multi_touch = (
            views.multitouch_view(multi, ws, report.campaign, q.get("half_life"))
            if multi is not None and asked
            else None
        )
        return render(
            request, "campaign.html", workspace=ws, session=session, r=report, nav="report",
            lift=lifted, multi_touch=multi_touch, multi_touch_available=multi is not None,
            variants=split,
        )  # fmt: skip

    def recipients(request: Request, ws: Workspace, session: Session) -> Response:
        q = request.query_params
        listing = views.recipients_view(
            queries, ws, request.path_params["ref"], search=q.get("q", ""),
            after=q.get("after", ""), trail=q.get("trail", ""),
            per_page=views.int_param(q.get("per"), views.PER_PAGE[0]),
            start=views.int_param(q.get("start"), 1),
        )  # fmt: skip
        return render(
            request, "recipients.html", workspace=ws, session=session, p=listing,
            nav="recipients",
        )  # fmt: skip

    def requests(request: Request, ws: Workspace, session: Session) -> Response:
        q = request.query_params
        listing = views.requests_view(
            campaign_store, click_store, ws, request.path_params["ref"],
            after=views.int_param(q.get("after"), 0),
            trail=q.get("trail", ""), per_page=views.int_param(q.get("per"), views.PER_PAGE[0]),
            start=views.int_param(q.get("start"), 1),
        )  # fmt: skip
        return render(
            request, "requests.html", workspace=ws, session=session, p=listing, nav="requests"
        )

    def automation_list(request: Request, ws: Workspace, session: Session) -> Response:
        if automations is None:
            raise NotFound("there is no automations page here", field="path")
        rows = list_automations(automations, ws, MAX_AUTOMATIONS, None).items
        return render(
            request, "automations.html", workspace=ws, session=session, nav="automations",
            rows=[(a, *describe(a.rule)) for a in rows],
        )  # fmt: skip

    def automation_page(request: Request, ws: Workspace, session: Session) -> Response:
        if automations is None or runs is None:
            raise NotFound("there is no automations page here", field="path")
        ref = str(request.path_params["ref"])
        a = get_automation(automations, ws, ref)
        latest = list_runs(automations, runs, ws, ref, RUNS_SHOWN, None).items
        return render(
            request, "automation.html", workspace=ws, session=session, nav="automations",
            a=a, described=describe(a.rule), runs=latest, shown=RUNS_SHOWN,
        )  # fmt: skip

    def webhook_page(_request: Request, ws: Workspace, session: Session) -> Response:
        endpoints = webhooks_view(*hooks, ws) if hooks else []
        return render(
            request=_request, name="webhooks.html", workspace=ws, session=session,
            endpoints=endpoints, nav="webhooks",
        )  # fmt: skip

    async def home(_request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    async def not_found(request: Request, _exc: Exception) -> Response:
        found = await current(request)
        return render(
            request, "error.html", 404, workspace=found[0] if found else None,
            session=found[1] if found else None, title="Not found",
            message="There is nothing at this address.",
        )  # fmt: skip

    async def clicktrail_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ClicktrailError)
        if isinstance(exc, StorageUnavailable):  # no session to look up: the database is away
            response = render(
                request, "error.html", 503, workspace=None, session=None,
                title="Try again shortly", message=exc.message,
            )  # fmt: skip
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        found = await current(request)
        status = status_of(exc) if isinstance(exc, NotFound | TooLarge) else 422
        return render(
            request, "error.html", status, workspace=found[0] if found else None,
            session=found[1] if found else None,
            title=TITLES.get(status, "Invalid request"), message=exc.message,
        )  # fmt: skip

    async def unexpected(request: Request, _exc: Exception) -> Response:
        return render(
            request, "error.html", 500, workspace=None, session=None, title="Internal error",
            message="Something went wrong; the server log has the details.",
        )  # fmt: skip

    app = Starlette(
        routes=[
            Route("/", page(campaigns), methods=["GET"]),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/campaigns/{ref}", page(campaign), methods=["GET"]),
            Route("/campaigns/{ref}/recipients", page(recipients), methods=["GET"]),
            Route("/campaigns/{ref}/requests", page(requests), methods=["GET"]),
            Route("/segments", page(segment_list), methods=["GET"]),
            Route("/automations", page(automation_list), methods=["GET"]),
            Route("/automations/{ref}", page(automation_page), methods=["GET"]),
            Route("/webhooks", page(webhook_page), methods=["GET"]),
        ],
        exception_handlers={
            ClicktrailError: clicktrail_error,
            404: not_found,
            Exception: unexpected,
        },
    )
    assets = StaticFiles(packages=[("clicktrail.web.dashboard", "static")])
    return [
        Route(PREFIX, home, methods=["GET"]),
        Mount(PREFIX, app=_SecurityHeaders(app)),
        Mount(STATIC, app=assets),
    ]
