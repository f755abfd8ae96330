"""A workspace's own API keys over HTTP (``/v1/keys``): list, create, get, revoke, rotate.

Thin handlers: parse the request, call `services.keys`, shape the answer. Every call is scoped to
the calling key's workspace: another workspace's key ids answer 404, like ids that do not
exist. A secret is in the answer of create and rotate only; nothing ever shows a key's hash.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Workspace
from clicktrail.services import keys, listing
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc
from clicktrail.services.keys import ApiKey, CreatedKey, KeyAuthStore, KeyStore
from clicktrail.web import schemas as s
from clicktrail.web import schemas_settings as st
from clicktrail.web.bodies import read_json
from clicktrail.web.routing import CURSOR, LIMIT, LOCATION, ApiRoute, Body, Op, Reply, flag, path

MAX_BODY = 4096
KEY_ID = path("key_id", "The key's id (`key_…`), as lists show it.")


def key_out(key: ApiKey, now: int) -> st.KeyOut:
    """Return the wire shape of `key` as it is at `now`."""
    return st.KeyOut(
        id=key.public_id, prefix=key.prefix, name=key.name, state=key.state(now),
        scopes=key.scopes, created_at=iso_utc(key.created_us) or "",
        last_used_at=iso_utc(key.last_used_us), expires_at=iso_utc(key.expires_us),
        revoked_at=iso_utc(key.revoked_us),
    )  # fmt: skip


def _created(created: CreatedKey, now: int) -> st.KeyCreated:
    return st.KeyCreated(**key_out(created.key, now).model_dump(), key=created.secret)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value in ("1", "true", "yes")


def routes(auth: KeyAuthStore, key_store: KeyStore) -> list[BaseRoute]:
    """Return the API-key routes: `auth` authenticates, `key_store` keeps the keys."""

    def workspace(request: Request) -> Workspace:
        return keys.authenticate(auth, request.headers.get("authorization"))

    def list_keys(request: Request) -> Response:
        ws = workspace(request)
        limit = listing.page_limit(request.query_params.get("limit"))
        page = keys.list_keys(key_store, ws, limit, request.query_params.get("cursor"))
        now = now_us()
        out = st.KeyPage(items=[key_out(k, now) for k in page.items], next_cursor=page.next_cursor)
        return JSONResponse(out.model_dump(mode="json"))

    async def create_key(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(st.KeyCreate, await _body(request))
        now = now_us()
        expires = keys.expiry_us(now, expires_at=b.expires_at, expires_in=b.expires_in)
        created = await run_in_threadpool(
            keys.create_key, key_store, ws, b.name, now, expires_us=expires
        )
        return JSONResponse(
            _created(created, now).model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/keys/{created.key.public_id}"},
        )

    def get_key(request: Request) -> Response:
        ws = workspace(request)
        key = keys.get_key(key_store, ws, _key_id(request))
        return JSONResponse(key_out(key, now_us()).model_dump(mode="json"))

    def revoke_key(request: Request) -> Response:
        ws = workspace(request)
        force = _flag(request, "force")
        keys.revoke_key(key_store, ws, _key_id(request), now_us(), keep_one_active=not force)
        return Response(status_code=204)

    async def rotate_key(request: Request) -> Response:
        ws = await run_in_threadpool(workspace, request)
        b = s.parse_body(st.KeyRotate, await _body(request))
        now = now_us()
        grace = 0 if b.grace is None else keys.parse_duration(b.grace, "grace")
        expires = keys.expiry_us(now, expires_at=b.expires_at, expires_in=b.expires_in)
        done = await run_in_threadpool(
            keys.rotate_key, key_store, ws, _key_id(request), now, grace_us=grace,
            expires_us=expires,
        )  # fmt: skip
        out = st.KeyRotated(new=_created(done.new, now), old=key_out(done.old, now))
        return JSONResponse(
            out.model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"/v1/keys/{done.new.key.public_id}"},
        )

    return [
        ApiRoute("/v1/keys", list_keys, "GET", Op(
            "List API keys", "keys",
            Reply(200, "A page of the workspace's keys, oldest first, revoked and expired ones "
                  "too; never a secret.", st.KeyPage),
            description="`last_used_at` is recorded at most once a minute per key. `scopes` is "
            "null (full access) on every key: scopes are not enforced yet.",
            params=(LIMIT, CURSOR))),
        ApiRoute("/v1/keys", create_key, "POST", Op(
            "Create an API key", "keys",
            Reply(201, "The new key with its secret in `key`: shown this once, stored only as "
                  "a hash.", st.KeyCreated, LOCATION),
            description="Optionally expiring: `expires_at` (a time) or `expires_in` (a "
            "duration), in the future; after it the key answers 401 like a revoked one.",
            body=st.KeyCreate)),
        ApiRoute("/v1/keys/{key_id}", get_key, "GET", Op(
            "Get an API key", "keys", Reply(200, "The key (never its secret).", st.KeyOut),
            params=(KEY_ID,), errors=(401, 404))),
        ApiRoute("/v1/keys/{key_id}", revoke_key, "DELETE", Op(
            "Revoke an API key", "keys",
            Reply(204, "Revoked at once (revoking a revoked key changes nothing): calls with it "
                  "answer 401 and the dashboard sessions it opened end."),
            description="A key may revoke itself. The workspace's last active key is refused "
            "(409) unless `force=true`: the workspace would have no key left for the API (the "
            "operator can create one with `clicktrail keys create`).",
            params=(KEY_ID, flag("force", "Revoke even the workspace's last active key.")),
            errors=(401, 404, 409, 422))),
        ApiRoute("/v1/keys/{key_id}/rotate", rotate_key, "POST", Op(
            "Rotate an API key", "keys",
            Reply(201, "The new key (its secret shown this once) and the old key as it is now.",
                  st.KeyRotated, LOCATION),
            description="Creates a key with the same name and scopes and retires the old one: "
            "revoked at once, or with `grace` still working until the grace period ends (it "
            "then expires). The new key expires as asked, else after the old key's lifetime if "
            "it had one. A revoked key cannot be rotated (409).",
            params=(KEY_ID,), body=Body({"application/json": st.KeyRotate}, required=False),
            errors=(401, 404, 409, 422))),
    ]  # fmt: skip


async def _body(request: Request) -> bytes:
    # Read no further than the limit (413): a key's body is a few hundred bytes.
    return await read_json(request, MAX_BODY)


def _key_id(request: Request) -> str:
    # Public ids only: a secret never belongs in a URL (logs, proxies, history), and a path
    # that is not an id is not echoed back.
    ref = str(request.path_params["key_id"])
    if not ref.startswith("key_"):
        raise NotFound("API key not found in this workspace", field="key")
    return ref
