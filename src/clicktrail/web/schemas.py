"""The API's wire shapes as pydantic models: one source for validating request bodies, for
building responses and for the JSON Schemas of the OpenAPI document (`web/openapi.py`).

Request models are strict (JSON types only, no coercion) and forbid unknown fields, so what the
document says is what the server accepts; their errors become 422 problems naming the field as
a JSON pointer (`problems_from`). Times are ISO 8601 UTC strings (`iso_utc`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.sms.errors import LoneSurrogateError, check_characters


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no database a lone UTF-16 surrogate ("\ud83d" is
    # valid JSON: a truncated emoji); refuse them here rather than fail in storage.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        return check_characters(value, "text")
    except LoneSurrogateError as exc:
        raise ValueError(
            f"must not contain a lone UTF-16 surrogate (U+{exc.code_point:04X} at character "
            f"{exc.position}; a truncated emoji?)"
        ) from None


Text = Annotated[str, AfterValidator(_no_nul)]
Time = Annotated[str, Field(description="ISO 8601 time in UTC", examples=["2026-11-22T10:00:00Z"])]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


_RequestT = TypeVar("_RequestT", bound=_Request)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


def out_json(model: type[_Response], data: Any) -> bytes:
    """Return the answer `data` as JSON, validated (strictly) against its closed response
    `model` first: an answer that gains, loses or renames a key, or changes a type, fails here
    (a 500, and the route's tests) instead of drifting from the documented shape. `data` itself
    is written (orjson): validating is about half the cost of pydantic's validate-and-dump
    (a batch answer of 1,000
    results: 2 ms against 3.4 ms), and an optional key left out stays out."""
    model.model_validate(data, strict=True)
    return orjson.dumps(data)


def parse_body(model: type[_RequestT], data: bytes) -> _RequestT:
    """Return `data` (JSON) validated as `model`. Raises `InvalidInput` with one problem per
    bad field (JSON pointers such as ``/link_role/2``)."""
    try:
        return model.model_validate_json(data or b"{}")
    except ValidationError as exc:
        problems = problems_from(exc)
        if problems and problems[0].field == "body":
            # pydantic's parser refuses a lone surrogate escape ("\ud83d", valid JSON): name it.
            problems = _lone_surrogate(data) or problems
        raise InvalidInput(
            "invalid request body: " + "; ".join(f"{p.field}: {p.message}" for p in problems[:10]),
            field=problems[0].field if problems else "body",
            problems=problems,
        ) from None


def _lone_surrogate(data: bytes) -> list[Problem]:
    """The first string of JSON `data` (a key or a value, breadth first) holding a lone
    surrogate, as a problem naming its JSON pointer; [] when there is none or no JSON."""
    try:
        todo: list[tuple[str, Any]] = [("", json.loads(data))]
    except ValueError:
        return []
    while todo:
        at, value = todo.pop(0)
        texts: list[str] = []
        if isinstance(value, str):
            texts = [value]
        elif isinstance(value, dict):
            texts = list(value)
            todo += [(f"{at}/{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            todo += [(f"{at}/{i}", v) for i, v in enumerate(value)]
        for text in texts:
            try:
                _no_nul(text)
            except ValueError as exc:
                return [Problem(at or "body", str(exc))]
    return []


def problems_from(exc: ValidationError) -> list[Problem]:
    """Return pydantic's errors as problems whose field is a JSON pointer into the body."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(x) for x in err["loc"]]
        field = "/" + "/".join(loc) if loc else "body"
        msg = err["msg"]
        if err["type"] == "json_invalid":
            field, msg = "body", f"not valid JSON: {err.get('ctx', {}).get('error', msg)}"
        out.append(Problem(field, msg))
    return out


# -- requests -----------------------------------------------------------------------------------


class DomainCreate(_Request):
    """A short domain to register."""

    host: Annotated[Text, Field(min_length=1, max_length=300, examples=["sms.example.com"])]
    prefix: Annotated[Text, Field(max_length=32, description="Path before the token.")] = "/c/"
    scheme: Literal["http", "https"] | None = None
    fallback_url: Annotated[Text, Field(max_length=2000)] | None = Field(
        default=None, description="Where unknown or expired links on this host go."
    )


class HoldoutIn(_Request):
    """A campaign's holdout (docs/attribution.md, "Holdout and lift")."""

    share: Annotated[float, Field(gt=0, le=0.5, description="Share of the audience, up to 0.5.")]
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = Field(
        default=None, description="Seed of the draw (default: a random one, recorded)."
    )
    stratify: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="``list`` or ``attribute:NAME`` (segments once they exist)."
    )


SubName = Literal["sub1", "sub2", "sub3", "sub4", "sub5"]


class CampaignChange(_Request):
    """What to change of a campaign: some of its link macros {sub1} … {sub5}."""

    subs: Annotated[
        dict[SubName, Annotated[Text, Field(max_length=200)] | None],
        Field(min_length=1, max_length=5),
    ] = Field(
        description='A value sets a macro, null or "" clears it; the others stay. Messages '
        "wrapped from then on carry the new values (docs/conversions.md).",
        examples=[{"sub1": "summer", "sub2": None}],
    )


class VariantIn(_Request):
    """One variant of an A/B test."""

    name: Annotated[Text, Field(min_length=1, max_length=32, examples=["a"])]
    template: Annotated[Text, Field(min_length=1, max_length=10_000)] = Field(
        description="This variant's text; {variant} is its name (in links too)."
    )
    share: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=1, description="Its weight in the split: 70 and 30 send 70 % and 30 %."
    )


# Outside the class: its field `list` would shadow the builtin in the annotation.
VariantList = Annotated[list[VariantIn], Field(max_length=10)]


class CampaignCreate(_Request):
    """A campaign to create as a draft (the options of `clicktrail campaign create`)."""

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    template: (
        Annotated[
            Text,
            Field(
                min_length=1,
                max_length=10_000,
                description="Message text with {placeholders} and links (not with `variants`).",
                examples=["Hi {first_name|there}: https://shop.example.com/sale"],
            ),
        ]
        | None
    ) = None
    variants: VariantList | None = Field(
        default=None,
        description="An A/B test: 2-10 variants, each its own text, split by their shares "
        "(docs/experiments.md). The first is the control.",
    )
    variant_seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = Field(
        default=None, description="Seed of the variant draw (default: drawn at random)."
    )
    slug: Annotated[Text, Field(max_length=63)] | None = None
    domain: Annotated[Text, Field(max_length=300)] | None = Field(
        default=None, description="Short domain host (default: the workspace's first)."
    )
    list: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="Contact list to send to (default: all contacts)."
    )
    segment: Annotated[Text, Field(max_length=63)] | None = Field(
        default=None, description="Segment to send to instead of a list (slug or id; "
        "docs/segments.md): its opted-in members when each is wrapped.",
    )  # fmt: skip
    link_role: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}$")], Text] = Field(
        default_factory=dict,
        description="Role per link number (from 1): cta (default), optout or other.",
        examples=[{"2": "optout"}],
    )
    link_utm: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}$")], dict[Text, Text]] = Field(
        default_factory=dict,
        description="UTM parameters for one link number only.",
        examples=[{"1": {"utm_content": "hero"}}],
    )
    smart_encoding: bool = False
    shift_table: Annotated[Text, Field(max_length=32)] | None = None
    utm_enabled: bool = True
    utm: dict[Text, Text] = Field(
        default_factory=dict,
        description="Parameters added to every destination (an empty value removes one).",
    )
    click_id_param: Annotated[Text, Field(max_length=64)] = "ct_cid"
    subs: dict[SubName, Annotated[Text, Field(max_length=200)]] = Field(
        default_factory=dict,
        description="Values of the link macros {sub1} … {sub5} (docs/conversions.md).",
        examples=[{"sub1": "spring", "sub2": "vip"}],
    )
    holdout: HoldoutIn | None = Field(
        default=None, description="Hold out a share of the audience: they get nothing."
    )


# -- responses ----------------------------------------------------------------------------------


class ProblemItem(_Response):
    """One bad field of the request."""

    field: str
    message: str


class ProblemDetails(_Response):
    """An RFC 9457 problem, with clicktrail's stable `code` and the `field` at fault."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    errors: list[ProblemItem] | None = None


class WorkspaceOut(_Response):
    """The workspace of the API key."""

    id: str
    slug: str
    name: str
    demo: bool


class DomainOut(_Response):
    """A short domain."""

    host: str
    scheme: str
    port: int | None
    path_prefix: str
    base_url: str
    fallback_url: str | None


class ContactOut(_Response):
    """A recipient."""

    phone: str = Field(description="E.164")
    external_id: str | None
    first_name: str | None
    attributes: dict[str, Any]
    opted_out: bool
    created_at: Time
    updated_at: Time


class ContactListOut(_Response):
    """A contact list."""

    name: str
    members: int
    created_at: Time


class RejectedRow(_Response):
    """A CSV row that was not imported."""

    line: int
    reason: str


class ImportOut(_Response):
    """What an import did."""

    rows: int
    created: int
    updated: int
    duplicates: int
    rejected: list[RejectedRow]


class LinkOut(_Response):
    """One link position of a campaign's template."""

    link: int = Field(description="The link's number in the template, from 1 (as in link_role).")
    url: str
    role: str
    utm: dict[str, str]


class HoldoutOut(_Response):
    """A campaign's holdout: its share, the seed of its draw and how it is stratified."""

    share: float
    seed: int
    stratify: str | None


class CampaignOptionsOut(_Response):
    """How messages are encoded and links tagged."""

    smart_encoding: bool
    shift_table: str | None
    utm_enabled: bool
    utm: dict[str, str]
    click_id_param: str
    subs: dict[str, str]
    holdout: HoldoutOut | None


class CampaignOut(_Response):
    """A campaign."""

    id: str
    slug: str
    name: str
    status: str
    template: str
    domain: str
    links: list[LinkOut]
    list: str | None
    segment: str | None = Field(default=None, description="The audience segment's slug.")
    options: CampaignOptionsOut
    created_at: Time
    sent_at: Time | None


class CostOut(_Response):
    """What one rendering costs as SMS."""

    encoding: str
    segments: int
    units: int


class SmartChangeOut(_Response):
    """One character smart encoding replaces."""

    original: str
    replacement: str
    reason: str


class SmartEncodingOut(_Response):
    """What smart encoding changes in this message: applied when the campaign uses it, else a
    suggestion."""

    enabled: bool = Field(description="The campaign uses smart encoding.")
    would_apply: bool = Field(description="It changes this message.")
    segments: int = Field(description="Segments with it.")
    encoding: str = Field(description="Encoding with it.")
    changes: list[SmartChangeOut]
    blocking: list[str] = Field(description="Characters it cannot replace (they force UCS-2).")


class PreviewLinkOut(_Response):
    """One link of the previewed message."""

    index: str = Field(description="The link's number in the template, from 1, as text.")
    role: str
    url: str
    short_url: str = Field(description="A sample tracked link (not stored).")
    destination: str = Field(description="Where the tracked link leads, UTM included.")


class PreviewOut(_Response):
    """The campaign as one recipient would get it (tokens are fresh and not stored)."""

    contact_phone: str | None
    body: str
    cost: CostOut
    template: CostOut
    untracked: CostOut
    worst_case: CostOut
    smart_encoding: SmartEncodingOut
    links: list[PreviewLinkOut]
    warnings: list[str]


class SendOut(_Response):
    """What a send did."""

    campaign: str
    created: int
    sent: int
    failed: int
    segments: int
    encodings: dict[str, int]


class MessageOut(_Response):
    """One SMS to one contact in one campaign."""

    id: str
    campaign: str
    campaign_slug: str
    to: str
    external_id: str | None
    body: str
    encoding: str
    segments: int
    status: Literal[
        "queued", "sending", "sent", "delivered", "failed", "undelivered", "cancelled",
        "skipped", "unknown",
    ]  # fmt: skip
    provider: str | None
    provider_message_id: str | None
    error_code: str | None
    queued_at: Time
    sent_at: Time | None
    delivered_at: Time | None
    failed_at: Time | None
    status_at: Time


class ClickOut(_Response):
    """One request on a tracked link (a click when `is_click`: GET), with its bot verdict."""

    id: str
    at: Time
    campaign: str
    campaign_slug: str
    message: str
    link: int = Field(description="The link's number in the template, from 1 (as in link_role).")
    link_url: str
    link_role: str
    destination: str
    external_id: str | None
    phone: str
    method: str
    is_click: bool
    verdict: str | None
    score: int | None
    reasons: list[str]
    final: bool
    ip: str | None
    user_agent: str | None


class _Page(_Response):
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")


class DomainPage(_Page):
    """A page of domains, by host."""

    items: list[DomainOut]


class ContactPage(_Page):
    """A page of contacts, by phone."""

    items: list[ContactOut]


class ContactListPage(_Page):
    """A page of contact lists, by name."""

    items: list[ContactListOut]


class CampaignPage(_Page):
    """A page of campaigns, newest first."""

    items: list[CampaignOut]


class MessagePage(_Page):
    """A page of messages, oldest first."""

    items: list[MessageOut]


class ClickPage(_Page):
    """A page of requests on tracked links, oldest first."""

    items: list[ClickOut]


class ReceiptsOut(_Response):
    """What a batch of receipts did."""

    applied: int
    unchanged: int
    unknown: list[str]


class Health(_Response):
    """The server is up."""

    status: Literal["ok"]


class Ready(_Response):
    """The database answers."""

    status: Literal["ready"]


class TlsAllowed(_Response):
    """HOST is a registered short domain."""

    allowed: Literal[True]


class FinalizedOut(_Response):
    """How many requests of the campaign got their final bot verdict."""

    campaign: str = Field(description="The campaign's slug.")
    finalized: int = Field(ge=0)
