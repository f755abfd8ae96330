"""SMS providers over HTTP: configure them (``/v1/providers``, API key) and receive their
delivery receipts (``/v1/webhooks/…``, no key: each request is authenticated as the provider's,
by Twilio's signature or the token or HMAC the HTTP provider is configured with).

Thin handlers: parse the request, call `services.providers`, shape the answer. Secrets come
from an API caller as values only: `providers.add_provider` refuses ``${NAME}`` references to
the server's environment from here (422 naming the option; only the operator's CLI may store
them), and the kinds refuse provider URLs the outbound policy forbids. A webhook that no
configured provider vouches for is 403 problem+json; an authentic one is always answered 200
once read (unknown messages included), so providers do not retry receipts for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from clicktrail.domain.errors import NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import providers, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.ports import Store
from clicktrail.services.providers import (
    InboundWebhook,
    ProviderConfig,
    ProviderKind,
    ProviderStore,
    WebhookOutcome,
)
from clicktrail.web import schemas as s
from clicktrail.web.bodies import read_json
from clicktrail.web.errors import problem

MAX_BODY = 64 * 1024


def provider_out(p: ProviderConfig) -> s.ProviderOut:
    """The wire shape of a configured provider (secrets masked)."""
    created = iso_utc(p.created_us)
    updated = iso_utc(p.updated_us)
    assert created is not None
    assert updated is not None
    return s.ProviderOut(
        id=p.public_id, name=p.name, kind=p.kind, settings=p.masked(),
        status_callback=p.settings.get("status_callback"),
        unknown_receipts=p.unknown_receipts, last_receipt_at=iso_utc(p.last_receipt_us),
        created_at=created, updated_at=updated,
    )  # fmt: skip


async def _hook(request: Request) -> InboundWebhook:
    # Unauthenticated (the provider's signature is checked once it is read): 64 KiB at most,
    # nested no deeper than JSON may be (an HTTP provider's receipts may be JSON).
    body = await read_json(request, MAX_BODY)
    return InboundWebhook(
        url=str(request.url),
        query=request.url.query,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


def _answer(outcome: WebhookOutcome, what: str) -> Response:
    if not outcome.authentic:
        return problem(403, "forbidden", f"no configured {what} provider signed this request")
    return JSONResponse(s.WebhookOut(**outcome.as_dict()).model_dump(mode="json"))


def routes(
    store: Store,
    repo: ProviderStore,
    kinds: Mapping[str, ProviderKind],
    env: Mapping[str, str],
) -> list[BaseRoute]:
    """Return the provider routes over `store` and the provider accounts `repo`; `kinds` are the
    kinds a workspace can configure and `env` resolves ``${ENV}`` secrets."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(store, request.headers.get("authorization"))

    def name_of(request: Request) -> str:
        name = str(request.path_params["name"])
        if not providers.NAME.fullmatch(name):
            raise NotFound(f"provider {name!r} not found", field="name")
        return name

    def list_providers(request: Request) -> Response:
        ws = workspace(request)
        items = [provider_out(p) for p in repo.list_providers(ws.id)]
        return JSONResponse(s.ProviderList(items=items).model_dump(mode="json"))

    async def create_provider(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(s.ProviderCreate, await read_json(request, MAX_BODY))
        p = await run_in_threadpool(
            lambda: providers.add_provider(
                repo, kinds, ws, name=b.name, kind=b.kind, options=b.options, now_us=now_us()
            )
        )
        return JSONResponse(
            provider_out(p).model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/providers/{p.name}"},
        )

    def get_provider(request: Request) -> Response:
        ws = workspace(request)
        p = providers.get_provider(repo, ws, name_of(request))
        return JSONResponse(provider_out(p).model_dump(mode="json"))

    def remove_provider(request: Request) -> Response:
        ws = workspace(request)
        providers.remove_provider(repo, ws, name_of(request))
        return Response(status_code=204)

    async def twilio_status(request: Request) -> Response:
        hook = await _hook(request)
        outcome = await run_in_threadpool(
            lambda: providers.record_webhook(
                store, repo, kinds["twilio"], hook, env=env, now_us=now_us()
            )
        )
        return _answer(outcome, "Twilio")

    async def http_status(request: Request) -> Response:
        name = str(request.path_params["provider_name"])
        hook = await _hook(request)
        if not providers.NAME.fullmatch(name):
            return _answer(WebhookOutcome(authentic=False), "HTTP")
        outcome = await run_in_threadpool(
            lambda: providers.record_webhook(
                store, repo, kinds["http"], hook, env=env, now_us=now_us(), name=name
            )
        )
        return _answer(outcome, f"HTTP {name!r}")

    return [
        Route("/v1/providers", list_providers, methods=["GET"]),
        Route("/v1/providers", create_provider, methods=["POST"]),
        Route("/v1/providers/{name}", get_provider, methods=["GET"]),
        Route("/v1/providers/{name}", remove_provider, methods=["DELETE"]),
        Route("/v1/webhooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/v1/webhooks/http/{provider_name}/status", http_status, methods=["POST"]),
    ]
