"""Wire shapes of the wrap-only API (``/v1/wrap``) and of opt-outs, as pydantic models: they
validate request bodies, build responses and give the OpenAPI document its schemas, like
`web.schemas` (whose strict request base and problem naming they share)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, Time, _Request, _Response

LinkNumber = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}$")]
Region = Annotated[
    Text,
    Field(
        pattern=r"^[A-Za-z]{2}$",
        description="ISO country of a phone written without +country code.",
        examples=["US"],
    ),
]


# -- wrap: requests -----------------------------------------------------------------------------


class CampaignSpecIn(_Request):
    """A wrap-only campaign, created on first use and reused by its slug afterwards (options
    must then match). Link numbers count from 1 over `template`, or over the first item's text
    when there is no template."""

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    slug: Annotated[Text, Field(max_length=63)] | None = None
    domain: Annotated[Text, Field(max_length=300)] | None = Field(
        default=None, description="Short domain host (default: the workspace's first)."
    )
    template: Annotated[Text, Field(min_length=1, max_length=10_000)] | None = Field(
        default=None,
        description="Template for items without text (default: the first item's text).",
    )
    link_role: dict[LinkNumber, Text] = Field(
        default_factory=dict,
        description="Role per link number (from 1): cta (default), optout or other.",
        examples=[{"2": "optout"}],
    )
    link_utm: dict[LinkNumber, dict[Text, Text]] = Field(default_factory=dict)
    smart_encoding: bool = False
    shift_table: Annotated[Text, Field(max_length=32)] | None = None
    utm_enabled: bool = True
    utm: dict[Text, Text] = Field(default_factory=dict)
    click_id_param: Annotated[Text, Field(max_length=64)] = "ct_cid"


CampaignRef = Annotated[
    Text,
    Field(min_length=1, max_length=64, description="Slug or id of an existing campaign."),
]


class WrapItemIn(_Request):
    """One message to wrap: a recipient (`to`, or the `external_id` of a contact) and its
    text."""

    to: Annotated[Text, Field(max_length=40, examples=["+14155550100"])] | None = Field(
        default=None, description="Phone: E.164, or national with `region`."
    )
    external_id: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None,
        description="The contact's external id; with `to`, stored on a contact this creates.",
    )
    region: Region | None = None
    first_name: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="Stored on a contact this call creates."
    )
    text: Annotated[Text, Field(max_length=10_000)] | None = Field(
        default=None,
        description="The message as it will be sent; every URL in it is wrapped, braces are "
        "text. Default: the campaign's template, personalized.",
        examples=["Your order shipped: https://shop.example.com/o/1234"],
    )
    client_ref: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None,
        description="Your key for this message: wrapping the same campaign, recipient and "
        "client_ref again returns the same message and links.",
    )


class WrapIn(WrapItemIn):
    """One message to wrap in a campaign."""

    campaign: CampaignRef | CampaignSpecIn
    mark_sent: bool = Field(
        default=False, description="Store the message as sent (default: queued until a receipt)."
    )


class WrapBatchIn(_Request):
    """Up to 10,000 messages to wrap in one campaign, all or nothing."""

    campaign: CampaignRef | CampaignSpecIn
    items: Annotated[list[WrapItemIn], Field(min_length=1, max_length=10_000)]
    region: Region | None = Field(default=None, description="Default `region` of the items.")
    mark_sent: bool = False


# -- wrap: responses ----------------------------------------------------------------------------


class WrappedLinkOut(_Response):
    """One tracked link of a wrapped message."""

    link: int = Field(description="The link's number in the text, from 1 (as in link_role).")
    token: str
    short_url: str
    destination: str = Field(description="Where the link leads (before UTM parameters).")


class WrappedOut(_Response):
    """A wrapped message. With `opted_out`, no message was made: do not send."""

    index: int = Field(description="Position of the item in the request, from 0.")
    to: str = Field(description="E.164")
    external_id: str | None
    opted_out: bool
    created: bool = Field(description="False when an earlier call made this message.")
    message_id: str | None = Field(description="`msg_…`: what receipts name.")
    text: str | None = Field(description="The text to send.")
    encoding: Literal["GSM-7", "UCS-2"] | None
    segments: int | None
    status: str | None = Field(
        description="queued (sent with mark_sent) when made; receipts move it forward."
    )
    links: list[WrappedLinkOut]


class WrapOut(WrappedOut):
    """One wrapped message and its campaign."""

    campaign: str
    campaign_slug: str


class WrapBatchOut(_Response):
    """A wrapped batch, item by item in request order."""

    campaign: str
    campaign_slug: str
    created: int
    existing: int
    opted_out: int
    items: list[WrappedOut]


# -- opt-outs -----------------------------------------------------------------------------------


class InboundIn(_Request):
    """An SMS a recipient sent, as your own gateway received it."""

    from_: Annotated[Text, Field(alias="from", min_length=1, max_length=40)] = Field(
        description="The sender's phone (E.164).", examples=["+14155550100"]
    )
    to: Annotated[Text, Field(max_length=40)] | None = Field(
        default=None, description="The number it was sent to."
    )
    text: Annotated[Text, Field(max_length=2000)]
    received_at: Annotated[Text, Field(max_length=40)] | float | None = Field(
        default=None, description="ISO 8601 (no zone: UTC) or Unix seconds; default now."
    )


class InboundOut(_Response):
    """What the message did: the keyword it is (null: none, nothing done) and the reply to
    send back (null: none)."""

    keyword: str | None
    action: Literal["opt_out", "opt_in", "help"] | None
    applied: bool = Field(description="True when it changed the sender's opt-out state.")
    opted_out: bool | None = Field(description="The sender's state now (null: not a contact).")
    reply: str | None


class OptOutChangeIn(_Request):
    """Opt one contact out, or back in."""

    contact: Annotated[Text, Field(min_length=1, max_length=200)] = Field(
        description="Phone (E.164, or national with `region`) or external id. An unknown "
        "phone becomes an opted-out contact."
    )
    opted_out: bool
    at: Annotated[Text, Field(max_length=40)] | float | None = Field(
        default=None, description="When: ISO 8601 or Unix seconds; default now."
    )
    note: Annotated[Text, Field(max_length=500)] | None = None


class OptOutBatchIn(_Request):
    """Opt-outs and opt-ins to record, all or nothing."""

    items: Annotated[list[OptOutChangeIn], Field(min_length=1, max_length=10_000)]
    region: Region | None = None


class OptOutResultOut(_Response):
    """What one change did."""

    phone: str
    applied: bool = Field(description="False when it was already so, or older than the latest.")
    opted_out: bool = Field(description="The contact's state now.")
    created: bool = Field(description="True when the phone became a contact.")


class OptOutBatchOut(_Response):
    """What the changes did, in request order."""

    items: list[OptOutResultOut]


class OptOutEventOut(_Response):
    """One opt-out or opt-in in a contact's history."""

    opted_out: bool
    at: Time
    source: str = Field(examples=["keyword:STOP via twilio inbound", "api", "import"])
    keyword: str | None
    to_number: str | None
    note: str | None
    applied: bool
    recorded_at: Time


class OptOutHistoryOut(_Response):
    """A contact's opt-out state and history, newest first (at most 1,000 events)."""

    phone: str
    opted_out: bool
    events: list[OptOutEventOut]


class KeywordRepliesIO(_Request):
    """What the workspace answers to HELP and to opt-out and opt-in keywords (null or empty:
    no reply)."""

    help: Annotated[Text, Field(max_length=1600)] | None = None
    opt_out: Annotated[Text, Field(max_length=1600)] | None = None
    opt_in: Annotated[Text, Field(max_length=1600)] | None = None
