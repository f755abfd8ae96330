"""The JSON API (``/v1``): thin handlers that parse input, call one service, format output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import ClicktrailError, InvalidInput, StorageUnavailable
from clicktrail.domain.models import Workspace
from clicktrail.services import receipts
from clicktrail.services.clock import now_us
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.receipts import ReceiptStore
from clicktrail.services.workspaces import WorkspaceStore, authenticate, is_tls_host_allowed
from clicktrail.web import openapi
from clicktrail.web import schemas as s
from clicktrail.web.bodies import BodyCap, read_json_value
from clicktrail.web.errors import handle_clicktrail_error, handle_unexpected, problem, problem_for
from clicktrail.web.routing import ApiRoute, Body, Op, Reply, flag, query

MAX_BODY = 5 * 1024 * 1024
READY_TIMEOUT_S = 2.0  # /readyz answers within this even when the database does not

# The receipts body, parsed by hand (`receipts.receipts_from_items` names each item's fault).
_RECEIPT = {
    "type": "object",
    "required": ["message_id", "status"],
    "properties": {
        "message_id": {"type": "string", "description": "`msg_…`"},
        "status": {"type": "string", "enum": ["sent", "delivered", "failed", "undelivered"]},
        "at": {
            "description": "ISO 8601 (no zone: UTC) or Unix seconds; default now.",
            "anyOf": [{"type": "string"}, {"type": "number"}],
        },
    },
}
_RECEIPTS = {"type": "array", "minItems": 1, "maxItems": receipts.MAX_BATCH, "items": _RECEIPT}
RECEIPT_BATCH = {
    "description": "Delivery receipts: an array, or an object with a `receipts` array.",
    "anyOf": [
        _RECEIPTS,
        {"type": "object", "required": ["receipts"], "properties": {"receipts": _RECEIPTS}},
    ],
}


class Readiness:
    """``/readyz``: can the server do its work now? Asks the database (`check`, which raises
    `StorageUnavailable`) with a deadline; one check at a time (a probe arriving while a slow
    one is still waiting gets the same answer: not ready)."""

    def __init__(self, check: Callable[[], object], timeout: float = READY_TIMEOUT_S) -> None:
        self.check = check
        self.timeout = timeout
        self._running: asyncio.Future[object] | None = None

    async def answer(self, _request: Request) -> Response:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_in_threadpool(self.check))
            # A check finishing after its probe gave up: its outcome is read here, not lost.
            self._running.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except Exception:  # StorageUnavailable, the deadline, or any other failure: not ready
            return problem_for(StorageUnavailable("the database is not answering"))
        return JSONResponse(s.Ready(status="ready").model_dump(mode="json"))


class ApiRepos(Protocol):
    """The repositories the core routes read, by area (`bootstrap.Container`): API keys,
    messages (receipts) and workspaces (their short domains)."""

    @property
    def keys(self) -> KeyAuthStore:
        """API keys: every handler authenticates first."""
        ...

    @property
    def messages(self) -> ReceiptStore:
        """Messages: receipts posted to the API move them."""
        ...

    @property
    def workspaces(self) -> WorkspaceStore:
        """Workspaces: whether a host is a registered short domain."""
        ...


def build_api(
    repos: ApiRepos,
    extra_routes: Sequence[BaseRoute] = (),
    ready: Callable[[], object] = lambda: None,
) -> Starlette:
    """Return the API application over `repos`, with the routes of other areas
    (resources, reports, exports, dashboard) that the composition root hands in. `ready`
    checks the database for ``/readyz`` (raises `StorageUnavailable` when it is down)."""

    def workspace(request: Request) -> Workspace:
        return authenticate(repos.keys, request.headers.get("authorization"))

    async def health(_request: Request) -> Response:
        # Liveness: the process answers. Whether it can do its work is /readyz.
        return JSONResponse(s.Health(status="ok").model_dump(mode="json"))

    async def post_status(request: Request) -> Response:
        ws = workspace(request)
        body = await read_json_value(request, MAX_BODY)
        items = body.get("receipts") if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                "body must be a non-empty JSON array of {message_id, status, at} "
                "(or an object with a 'receipts' array)",
                field="body",
            )
        if len(items) > receipts.MAX_BATCH:
            raise InvalidInput(
                f"at most {receipts.MAX_BATCH} receipts per request, got {len(items)}",
                field="body",
            )
        skip = request.query_params.get("skip_unknown", "false").lower() in ("1", "true", "yes")
        now = now_us()
        where = [f"/{i}" for i in range(len(items))]
        parsed = receipts.receipts_from_items(items, where, now)
        outcome = receipts.record_receipts(
            repos.messages, ws, parsed, where=where, skip_unknown=skip, source="api", now_us=now,
            skip_option="?skip_unknown=true",
        )  # fmt: skip
        out = s.ReceiptsOut(
            applied=outcome.applied, unchanged=outcome.unchanged, unknown=outcome.unknown
        )
        return JSONResponse(out.model_dump(mode="json"))

    async def tls_allowed(request: Request) -> Response:
        # Asked by a TLS terminator (Caddy's on-demand TLS) before it gets a certificate for a
        # host: no API key, and the answer says yes or no and nothing else.
        name = request.query_params.get("domain", "").strip()
        if not name:
            return problem(
                400, "invalid_input", "query parameter 'domain' is required", field="domain"
            )
        if is_tls_host_allowed(repos.workspaces, name):
            return JSONResponse(s.TlsAllowed(allowed=True).model_dump(mode="json"))
        return problem(404, "not_found", "not a registered short domain")

    async def not_found(request: Request, _exc: Exception) -> Response:
        return problem(404, "not_found", f"no route for {request.url.path}")

    async def method_not_allowed(request: Request, _exc: Exception) -> Response:
        return problem(405, "method_not_allowed", f"{request.method} is not allowed here")

    routes: list[BaseRoute] = [
        ApiRoute("/healthz", health, "GET", Op(
            "Liveness", "server", Reply(200, "The server is up.", s.Health),
            description="Liveness for load balancers and supervisors: the process answers (it "
            "does not ask the database; see `/readyz`). No key.",
            errors=(), auth=False, database=False)),
        ApiRoute("/readyz", Readiness(ready).answer, "GET", Op(
            "Readiness", "server", Reply(200, "The database answers.", s.Ready),
            description="Can the server do its work now: asks the database, within 2 s. 503 "
            "`storage_unavailable` (with `Retry-After`) while it does not answer. No key.",
            errors=(), auth=False)),
        ApiRoute("/v1/messages/status", post_status, "POST", Op(
            "Record delivery receipts", "messages", Reply(200, "What the batch did.", s.ReceiptsOut),
            description="Up to 10,000 receipts; a status only moves forward. A batch naming an "
            "unknown message id is rejected whole (422, one entry per item in `errors`) unless "
            "`skip_unknown=true`.",
            params=(flag("skip_unknown", "Apply the known ids and list the unknown ones."),),
            body=Body({"application/json": RECEIPT_BATCH}))),
        ApiRoute("/v1/tls/allowed", tls_allowed, "GET", Op(
            "May a certificate be issued for a host?", "server",
            Reply(200, "HOST is a registered short domain.", s.TlsAllowed),
            description="Asked by a TLS terminator (Caddy's on-demand TLS `ask`); no key. A "
            "malformed or unknown host is 404.",
            params=(query("domain", "The host name.", required=True),), errors=(400, 404),
            auth=False)),
        *extra_routes,
    ]  # fmt: skip
    routes += openapi.routes(lambda: routes)
    # An API path without its operation is refused here, before the server starts (ADR 0014).
    openapi.check_documented(routes)
    return Starlette(
        # No body past the largest route limit, whatever the route (`web.bodies`).
        middleware=[Middleware(BodyCap)],
        routes=routes,
        exception_handlers={
            ClicktrailError: handle_clicktrail_error,
            404: not_found,
            405: method_not_allowed,
            Exception: handle_unexpected,
        },
    )
