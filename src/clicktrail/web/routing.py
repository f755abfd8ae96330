"""An API route declared once: its path, method and handler together with what the OpenAPI
document says of it (ADR 0014).

Every route of the JSON API is an `ApiRoute` (a Starlette `Route` with one method and an `Op`)
declared beside its handler in `web/api*.py`::

    ApiRoute("/v1/keys/{key_id}", get_key, "GET", Op(
        "Get an API key", "keys", Reply(200, "The key (never its secret).", s.KeyOut),
        params=(KEY_ID,), errors=(401, 404))),

`web/openapi.py` builds the document by walking the app's routes, so an operation cannot be
documented without being served, and the app refuses to start with a plain `Route` under
``/v1/`` (`openapi.check_documented`). Responses and bodies name pydantic models
(`web/schemas*.py`); a raw JSON Schema is for media the models cannot say (CSV, TwiML, forms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import Route

from clicktrail.services.listing import MAX_LIMIT

NO_NUL = "^[^\\x00]*$"

# The document's tags, in the order the reference page shows them: an `Op` names one of these.
TAGS = (
    "server", "workspace", "keys", "domains", "contacts", "campaigns", "sending", "bots",
    "reports", "messages", "wrap", "opt-outs", "clicks", "exports", "providers", "networks",
    "conversions", "touchpoints", "attribution", "engagement", "webhooks", "segments",
    "automations",
)  # fmt: skip


@dataclass(frozen=True)
class AnyOf:
    """One of several models (a body or an answer that takes more than one shape)."""

    models: tuple[type[BaseModel], ...]

    def __init__(self, *models: type[BaseModel]) -> None:
        object.__setattr__(self, "models", models)


# What a body or a response carries: a model or `AnyOf` models (JSON), or media types with a
# model, `AnyOf` or a raw JSON Schema each.
Schema = type[BaseModel] | AnyOf | Mapping[str, Any]
Content = type[BaseModel] | AnyOf | Mapping[str, Schema] | None


@dataclass(frozen=True)
class Reply:
    """A success response: status, what it means, its content (None: no body) and headers."""

    status: int
    description: str
    content: Content = None
    headers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Body:
    """A request body: its media types (a model or a raw schema each), required or not."""

    content: Mapping[str, Schema]
    required: bool = True


@dataclass(frozen=True)
class Op:
    """What the document says of one operation.

    `ok` is the main success response and `more` any other; `body` a model (a required JSON
    body) or a `Body`. `errors` are the problem+json statuses the handler answers; the document
    adds 413 to every operation with a body and 503 to every one that needs the database.
    `auth`: needs an API key (`Authorization: Bearer`)."""

    summary: str
    tag: str
    ok: Reply
    description: str = ""
    params: tuple[Mapping[str, Any], ...] = ()
    body: type[BaseModel] | Body | None = None
    errors: tuple[int, ...] = (401, 422)
    auth: bool = True
    database: bool = True
    more: tuple[Reply, ...] = ()

    def __post_init__(self) -> None:
        if self.tag not in TAGS:
            raise ValueError(f"unknown tag {self.tag!r}: add it to web.routing.TAGS")


class ApiRoute(Route):
    """A route of the JSON API: one method, one handler, one `Op`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], method: str, op: Op) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.upper()
        self.op = op


# -- parameters ---------------------------------------------------------------------------------


def _param(where: str, name: str, description: str, schema: Mapping[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": dict(schema or {"type": "string", "pattern": NO_NUL}),
    }


def path(name: str, description: str) -> dict[str, Any]:
    """A path parameter (a string without NUL)."""
    return _param("path", name, description)


def query(name: str, description: str, schema: Mapping[str, Any] | None = None,
          required: bool = False) -> dict[str, Any]:  # fmt: skip
    """A query parameter (by default a string without NUL)."""
    return _param("query", name, description, schema, required)


def header(name: str, description: str) -> dict[str, Any]:
    """A request header."""
    return _param("header", name, description)


def flag(name: str, description: str) -> dict[str, Any]:
    """A boolean query parameter, false by default."""
    return query(name, description, {"type": "boolean", "default": False})


def json_body(model: type[BaseModel] | AnyOf, required: bool = True) -> Body:
    """A JSON body validated as `model`."""
    return Body({"application/json": model}, required)


LIMIT = query(
    "limit", f"Items per page, 1 to {MAX_LIMIT} (default 50).",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
)  # fmt: skip
CURSOR = query("cursor", "The `next_cursor` of the previous page, as it came.")
CAMPAIGN = path("campaign", "The campaign's slug or id (`cmp_…`).")
CONTACT = path("contact", "Phone (E.164, `+` encoded as `%2B`) or external id.")
TIME = {"type": "string", "pattern": NO_NUL, "examples": ["2026-11-22T10:00:00Z", "1790000000"]}
SINCE = query("since", "From this time on (inclusive): ISO 8601 (UTC without zone) or Unix "
              "seconds.", TIME)  # fmt: skip
UNTIL = query("until", "Before this time (exclusive); same forms as `since`.", TIME)
CAMPAIGN_FILTER = query("campaign", "Only this campaign (slug or id).")
LOCATION = {"Location": {"description": "Where the new resource is.", "schema": {"type": "string"}}}
TWILIO_SIGNATURE = header("X-Twilio-Signature", "Twilio's signature of the request.")
