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
from starlette.routing import BaseRoute

from clicktrail.domain.errors import NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import providers, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import KeyAuthStore
from clicktrail.services.providers import (
    InboundWebhook,
    ProviderConfig,
    ProviderKind,
    ProviderStore,
    WebhookOutcome,
    WebhookRepos,
)
from clicktrail.web import schemas as s
from clicktrail.web import schemas_settings as st
from clicktrail.web.bodies import read_json
from clicktrail.web.errors import problem
from clicktrail.web.routing import LOCATION, TWILIO_SIGNATURE, ApiRoute, Body, Op, Reply, path

MAX_BODY = 64 * 1024
PROVIDER = path("name", "The provider's name.")
# Receipts as providers post them: Twilio's form fields; an HTTP provider's own shape (its
# `receipts` settings say where the id and status are).
TWILIO_CALLBACK = {
    "type": "object",
    "required": ["MessageSid", "MessageStatus"],
    "properties": {
        name: {"type": "string"}
        for name in ("AccountSid", "MessageSid", "MessageStatus", "ErrorCode", "To", "From")
    },
    "additionalProperties": {"type": "string"},
}
PROVIDER_DEFINED = {"type": "object", "additionalProperties": True}


def provider_out(p: ProviderConfig) -> st.ProviderOut:
    """The wire shape of a configured provider (secrets masked)."""
    created = iso_utc(p.created_us)
    updated = iso_utc(p.updated_us)
    assert created is not None
    assert updated is not None
    return st.ProviderOut(
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
    return JSONResponse(st.WebhookOut(**outcome.as_dict()).model_dump(mode="json"))


def routes(
    keys: KeyAuthStore,
    repos: WebhookRepos,
    repo: ProviderStore,
    kinds: Mapping[str, ProviderKind],
    env: Mapping[str, str],
) -> list[BaseRoute]:
    """Return the provider routes over the provider accounts `repo`, receipts applied through
    `repos` (API keys checked through `keys`); `kinds` are the kinds a workspace can configure
    and `env` resolves ``${ENV}`` secrets."""

    def workspace(request: Request) -> Workspace:
        return workspaces.authenticate(keys, request.headers.get("authorization"))

    def name_of(request: Request) -> str:
        name = str(request.path_params["name"])
        if not providers.NAME.fullmatch(name):
            raise NotFound(f"provider {name!r} not found", field="name")
        return name

    def list_providers(request: Request) -> Response:
        ws = workspace(request)
        items = [provider_out(p) for p in repo.list_providers(ws.id)]
        return JSONResponse(st.ProviderList(items=items).model_dump(mode="json"))

    async def create_provider(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(st.ProviderCreate, await read_json(request, MAX_BODY))
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
                repos, repo, kinds["twilio"], hook, env=env, now_us=now_us()
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
                repos, repo, kinds["http"], hook, env=env, now_us=now_us(), name=name
            )
        )
        return _answer(outcome, f"HTTP {name!r}")

    return [
        ApiRoute("/v1/providers", list_providers, "GET", Op(
            "List SMS providers", "providers",
            Reply(200, "The workspace's configured providers, secrets masked.", st.ProviderList),
            description="The built-in `outbox` is not listed (docs/providers.md).")),
        ApiRoute("/v1/providers", create_provider, "POST", Op(
            "Configure an SMS provider", "providers",
            Reply(201, "The new provider, secrets masked.", st.ProviderOut, LOCATION),
            description="A Twilio account or a generic HTTP API (a preset such as `vonage` or "
            "`plivo` with its params, or the request, response and receipts written out). "
            "Secrets are given as values: a `${NAME}` reference to the server's environment is "
            "refused with 422 naming the option (only the operator's CLI may store "
            "references). The URL must be https and must not name a loopback, private, "
            "link-local or metadata address (unless the operator allows the network); every "
            "connection is checked again after DNS.",
            body=st.ProviderCreate, errors=(401, 409, 422))),
        ApiRoute("/v1/providers/{name}", get_provider, "GET", Op(
            "Get an SMS provider", "providers",
            Reply(200, "The provider, secrets masked.", st.ProviderOut),
            params=(PROVIDER,), errors=(401, 404))),
        ApiRoute("/v1/providers/{name}", remove_provider, "DELETE", Op(
            "Remove an SMS provider", "providers",
            Reply(204, "Removed; messages keep the provider's name."),
            params=(PROVIDER,), errors=(401, 404))),
        ApiRoute("/v1/webhooks/twilio/status", twilio_status, "POST", Op(
            "Twilio status callback", "providers",
            Reply(200, "Read: what the receipt did (unknown messages are counted, not refused).",
                  st.WebhookOut),
            description="Called by Twilio (`status_callback`), not by people: no key, the "
            "`X-Twilio-Signature` must be valid for a configured Twilio account over the "
            "callback URL that account is configured with.",
            params=(TWILIO_SIGNATURE,),
            body=Body({"application/x-www-form-urlencoded": TWILIO_CALLBACK}),
            errors=(403, 422), auth=False)),
        ApiRoute("/v1/webhooks/http/{provider_name}/status", http_status, "POST", Op(
            "HTTP provider receipts", "providers",
            Reply(200, "Read: what the receipts did (unknown messages are counted, not "
                  "refused).", st.WebhookOut),
            description="Called by the provider, not by people: no key, the request must carry "
            "the token or HMAC the provider's `receipts.auth` names. JSON or a form.",
            params=(path("provider_name", "The provider's name."),),
            body=Body({"application/json": PROVIDER_DEFINED,
                       "application/x-www-form-urlencoded": PROVIDER_DEFINED}),
            errors=(403, 422), auth=False)),
    ]  # fmt: skip
