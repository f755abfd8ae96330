"""Wire shapes of conversions (``/v1/conversions``), as pydantic models for the OpenAPI
document and the answers (every one validated against its model before it is written:
`schemas.out_json`). Items of a request are checked by `services.conversions`, item by item,
so that one bad conversion gets its own `invalid` outcome instead of refusing the batch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, Time, _Page, _Request, _Response

OutcomeName = Literal[
    "accepted", "replaced", "duplicate", "unknown_click", "unknown_contact", "outside_window",
    "invalid",
]  # fmt: skip
Money = Annotated[
    str | float,
    Field(
        description="Decimal amount, at most six decimals (stored exactly, in micros).",
        examples=["12.50"],
    ),
]


class ContactRefIn(_Request):
    """A contact of the workspace, by one of its external id or phone."""

    external_id: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    phone: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="E.164, or national with the server's default region."
    )


class ConversionIn(_Request):
    """One conversion: a click id or a contact, an event, and optionally a value with its
    currency, when it happened and the order (transaction) id."""

    click_id: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="The click id (`ct_cid` of the landing URL). Alias: `ct_cid`."
    )
    ct_cid: Annotated[Text, Field(max_length=64)] | None = None
    contact: ContactRefIn | None = Field(
        default=None, description="Used when there is no click id."
    )
    event: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="Event name (default `conversion`).", examples=["purchase"]
    )
    value: Money | None = None
    currency: Annotated[Text, Field(max_length=3)] | None = Field(
        default=None, description="ISO 4217; required with `value`.", examples=["EUR"]
    )
    occurred_at: Time | float | None = Field(
        default=None,
        description="ISO 8601 or Unix seconds; default now; at most 5 minutes ahead.",
    )
    txn: Annotated[Text, Field(max_length=128)] | None = Field(
        default=None,
        description="Order or transaction id: the conversion is unique on (event, txn) forever.",
    )
    metadata: dict[Annotated[str, Field(max_length=64)], str | float | bool | None] | None = Field(
        default=None, description="Flat; at most 32 keys and 4 KiB."
    )


class ConversionBatchIn(_Request):
    """Up to 1,000 conversions, answered one outcome each, in order."""

    conversions: Annotated[list[ConversionIn], Field(min_length=1, max_length=1000)]


class ConversionOut(_Response):
    """A stored conversion and what its click id or contact resolved to."""

    id: str = Field(examples=["cnv_4CZtUbcQ9f1xAb3D"])
    event: str
    value: str | None = Field(description="Decimal text, e.g. `12.5`; null without a value.")
    value_micros: int | None = Field(description="The value in millionths of the currency.")
    currency: str | None
    occurred_at: Time
    received_at: Time
    click_id: str | None
    contact: str | None = Field(description="The contact's external id, else its phone.")
    campaign: str | None = Field(description="Campaign slug (through the click).")
    message: str | None = Field(description="Message id (through the click).")
    link: int | None = Field(description="The link's number in the template, from 1.")
    txn: str | None
    source: Literal["api", "postback", "pixel", "beacon", "import"]
    metadata: dict[str, Any] | None
    updated_at: Time | None = Field(description="When duplicate mode `replace` last changed it.")


class ConversionResult(_Response):
    """What one conversion of a request did."""

    outcome: OutcomeName
    id: str | None = Field(
        default=None, description="The conversion holding its dedup key (accepted, replaced, "
        "duplicate)."
    )  # fmt: skip
    field: str | None = Field(default=None, description="The field at fault (refusals).")
    detail: str | None = Field(default=None, description="Why, for people (refusals).")


class ConversionRecorded(_Response):
    """The answer to one conversion."""

    outcome: Literal["accepted", "replaced", "duplicate"]
    conversion: ConversionOut


class ConversionBatchOut(_Response):
    """One result per conversion, in request order, and how many of each outcome."""

    results: list[ConversionResult]
    counts: dict[OutcomeName, int]


class ConversionPage(_Page):
    """A page of conversions, in the order they were stored."""

    items: list[ConversionOut]


class EventModeIn(_Request):
    """What a second conversion of the event does."""

    duplicate_mode: Literal["ignore", "count", "replace"]


class EventModeOut(_Response):
    """An event's duplicate mode."""

    event: str
    duplicate_mode: Literal["ignore", "count", "replace"]
    updated_at: Time | None


class EventModeList(_Response):
    """The workspace's events with a duplicate mode set (others are `ignore`)."""

    items: list[EventModeOut]


class RejectedOut(_Response):
    """A refused postback, pixel or beacon."""

    at: Time
    source: str
    reason: str = Field(description="An outcome (`unknown_click`…) or an error code.")
    field: str | None
    detail: str
    query: str = Field(description="The query string, secrets masked.")
    ip: str | None


class RejectedPage(_Page):
    """A page of the rejected log, newest first."""

    items: list[RejectedOut]


class ConversionKeyCreate(_Request):
    """A new postback secret or publishable key."""

    name: Annotated[Text, Field(min_length=1, max_length=200)] = Field(
        description="What it is for (the network's name, the site).", examples=["everflow"]
    )
    default_currency: Annotated[Text, Field(max_length=3)] | None = Field(
        default=None, description="ISO 4217: the currency of a value sent without one."
    )


class ConversionKeyOut(_Response):
    """A postback secret or publishable key (never its secret)."""

    id: str = Field(examples=["pbk_4CZtUbcQ9f1x"])
    name: str
    prefix: str = Field(description="Its first 16 characters (`pbs_…`, `pk_…`), to recognise it.")
    default_currency: str | None
    state: Literal["active", "revoked"]
    created_at: Time
    revoked_at: Time | None


class ConversionKeyCreated(ConversionKeyOut):
    """A new credential with its secret: shown this once, stored only as a hash."""

    secret: str


class ConversionKeyList(_Response):
    """A workspace's postback secrets or publishable keys, oldest first, revoked ones too."""

    items: list[ConversionKeyOut]


class RecordedOut(_Response):
    """What a postback or beacon did (refusals are problems)."""

    outcome: Literal["accepted", "replaced", "duplicate"]
    id: str = Field(description="The conversion holding its dedup key.")
