"""The OpenAPI 3.1 document of the API (``GET /openapi.json``), derived from the routes that
serve it, and its reference page (``GET /docs``, `web/openapi_page.py`).

`document` walks the app's routes: every `web.routing.ApiRoute` contributes its operation
(declared beside its handler), and the schemas are those of the pydantic models the operations
name (the same models that validate request bodies and build responses), so the document cannot
describe an operation that is not served nor a shape the code does not produce.
`check_documented` refuses an app with an API path served by a plain `Route` (ADR 0014).
`tests/test_openapi.py` validates real responses against the document and runs schemathesis
over it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from clicktrail.web import schemas as s
from clicktrail.web.openapi_page import render_docs
from clicktrail.web.routing import TAGS, AnyOf, ApiRoute, Body, Content, Op, Schema

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"
# Paths that are the API: served only by `ApiRoute`s. (The dashboard, the home page, the redirect
# and this document's own two routes are not API operations.)
API_PREFIX = "/v1/"
API_PATHS = ("/healthz", "/readyz", "/postback", "/ct.js")  # the last two: conversions

_ERRORS = {
    400: "A required query parameter is missing.",
    401: "No key, a malformed header, or an unknown, revoked or expired key.",
    403: "No configured provider signed the request.",
    404: "Not found in the key's workspace.",
    409: "Clashes with existing state.",
    413: "The body is over the route's limit (`too_large`, with the `limit` in bytes); it "
    "was not read further.",
    422: "A parameter or the body is wrong; `field` (and `errors`) name it. Nothing was written.",
    503: "The database is not answering (`storage_unavailable`); try again after `Retry-After`.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    },
}


class UndocumentedRoute(TypeError):
    """An API path is served by a route that does not declare its operation."""


def walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Yield (full path, route) for every `Route` of `routes`, inside mounts too."""
    for route in routes:
        if isinstance(route, Mount):
            yield from walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def is_api_path(path: str) -> bool:
    """Return whether `path` belongs to the JSON API (and so must be an `ApiRoute`)."""
    return path.startswith(API_PREFIX) or path in API_PATHS


def check_documented(routes: Sequence[BaseRoute]) -> None:
    """Raise `UndocumentedRoute` naming every API path served by a plain `Route`, or an
    operation declared twice."""
    bare = sorted(
        f"{','.join(sorted(set(r.methods or ()) - {'HEAD'}))} {p}"
        for p, r in walk(routes)
        if is_api_path(p) and not isinstance(r, ApiRoute)
    )
    if bare:
        raise UndocumentedRoute(
            "API routes without an operation (declare them as web.routing.ApiRoute): "
            + "; ".join(bare)
        )
    seen: set[tuple[str, str]] = set()
    for p, r in walk(routes):
        if isinstance(r, ApiRoute):
            if (r.method, p) in seen:
                raise UndocumentedRoute(f"{r.method} {p} is declared twice")
            seen.add((r.method, p))


def operations(routes: Sequence[BaseRoute]) -> list[tuple[str, ApiRoute]]:
    """Return (full path, route) of every API operation of `routes`, in route order."""
    return [(p, r) for p, r in walk(routes) if isinstance(r, ApiRoute)]


def _models(content: Content | Mapping[str, Schema]) -> Iterator[type[BaseModel]]:
    if isinstance(content, type):
        yield content
    elif isinstance(content, AnyOf):
        yield from content.models
    elif content is not None:
        for x in content.values():
            if isinstance(x, type | AnyOf):
                yield from _models(x)


def _bodies(op: Op) -> Mapping[str, Schema]:
    if op.body is None:
        return {}
    return op.body.content if isinstance(op.body, Body) else {"application/json": op.body}


def _schema(value: Schema) -> dict[str, Any]:
    if isinstance(value, type):
        return {"$ref": REF.format(model=value.__name__)}
    if isinstance(value, AnyOf):
        return {"anyOf": [_schema(m) for m in value.models]}
    return dict(value)


def _content(content: Content) -> dict[str, Any]:
    if content is None:
        return {}
    media = {"application/json": content} if isinstance(content, type | AnyOf) else content
    return {m: {"schema": _schema(x)} for m, x in media.items()}


def _schemas(ops: Sequence[Op]) -> dict[str, Any]:
    """The component schemas of every model `ops` name (requests in validation mode)."""
    requests = {m for op in ops for m in _models(_bodies(op))}
    models: dict[type[BaseModel], None] = {s.ProblemDetails: None}
    for op in ops:
        for reply in (op.ok, *op.more):
            models.update(dict.fromkeys(_models(reply.content)))
        models.update(dict.fromkeys(_models(_bodies(op))))
    names: dict[str, type[BaseModel]] = {}
    for m in models:
        if names.setdefault(m.__name__, m) is not m:
            raise UndocumentedRoute(f"two models are named {m.__name__}: rename one")
    inputs: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = [
        (m.__name__, "validation" if m in requests else "serialization", TypeAdapter(m))
        for m in models
    ]
    top, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), schema in top.items():
        schemas.setdefault(name, schema)
    return schemas


def _operation(method: str, path: str, op: Op) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for reply in (op.ok, *op.more):
        entry: dict[str, Any] = {
            "description": reply.description,
            "content": _content(reply.content),
        }
        if reply.headers:
            entry["headers"] = dict(reply.headers)
        responses[str(reply.status)] = entry
    # Every body has a limit (413); everything that asks the database may find it down (503).
    codes = (*op.errors, *((413,) if op.body is not None else ()), *((503,) if op.database else ()))
    for code in codes:
        responses[str(code)] = {
            "description": _ERRORS[code],
            "content": {PROBLEM: {"schema": _schema(s.ProblemDetails)}},
        }
        if code == 503:
            responses[str(code)]["headers"] = _RETRY_AFTER
    out: dict[str, Any] = {
        "operationId": f"{method}_{path}".replace("/", "_").replace("{", "")
        .replace("}", "").replace(".", "_").strip("_"),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [dict(p) for p in op.params],
        "responses": responses,
    }  # fmt: skip
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        body = op.body if isinstance(op.body, Body) else Body({"application/json": op.body})
        out["requestBody"] = {
            "required": body.required,
            "content": {m: {"schema": _schema(x)} for m, x in body.content.items()},
        }
    out["security"] = [{"bearer": []}] if op.auth else []
    return out


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the API operations of `routes`."""
    check_documented(routes)
    ops = operations(routes)
    paths: dict[str, dict[str, Any]] = {}
    for path, route in ops:
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route.method.lower(), path, route.op
        )
    used = {route.op.tag for _, route in ops}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "clicktrail API",
            "version": "2",  # docs/api.md says what changed
            "description": "SMS link tracking: workspaces, domains, contacts, campaigns, "
            "messages, clicks, reports and exports. Errors are RFC 9457 problem details with "
            "a stable `code` and the `field` at fault. Lists page by cursor: "
            "`?limit=&cursor=` → `{items, next_cursor}`.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in TAGS if t in used],
        "paths": paths,
        "components": {
            "schemas": _schemas([route.op for _, route in ops]),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A workspace API key (`clicktrail keys create`).",
                }
            },
        },
    }


def routes(api_routes: Callable[[], Sequence[BaseRoute]]) -> list[BaseRoute]:
    """Return the routes of ``/openapi.json`` and ``/docs``, describing `api_routes()` (asked
    on first use: the app's whole route table, these two routes included)."""

    @functools.cache
    def doc() -> dict[str, Any]:
        return document(api_routes())

    @functools.cache
    def page() -> str:
        return render_docs(doc())

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(doc())

    async def docs(_request: Request) -> Response:
        return HTMLResponse(
            page(),
            headers={
                # Nothing to load from anywhere: the page is text and inline CSS only.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
