"""Wire shapes of what a workspace sets up, as pydantic models: SMS provider accounts, network
lists for bot filtering and API keys (like `web.schemas`, whose strict request base they
share)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, Time, _Page, _Request, _Response

# -- SMS providers (docs/providers.md) ----------------------------------------------------------


class ProviderCreate(_Request):
    """An SMS provider account to configure (the options of `clicktrail provider add`)."""

    name: Annotated[Text, Field(min_length=1, max_length=32, examples=["twilio-main"])]
    kind: Literal["twilio", "http"]
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Twilio: account_sid, auth_token, from or messaging_service_sid, "
        "status_callback or public_url, base_url, timeout, reconcile_days. HTTP: preset and "
        "params, or request/response/receipts written out (docs/providers.md). Secrets are "
        "given as values: a ${NAME} reference to the server's environment is refused (422; "
        "only the operator's CLI may store one). URLs must be https to public addresses "
        "unless the operator allows more.",
    )


class ProviderOut(_Response):
    """A configured SMS provider; secrets are masked (an ${ENV} reference is shown)."""

    id: str
    name: str
    kind: str
    settings: dict[str, Any]
    status_callback: str | None = Field(description="Where receipts are posted, if configured.")
    unknown_receipts: int = Field(description="Receipts that named no known message.")
    last_receipt_at: Time | None
    created_at: Time
    updated_at: Time


class ProviderList(_Response):
    """The workspace's configured providers, by name (the outbox is built in)."""

    items: list[ProviderOut]


class WebhookOut(_Response):
    """What a receipts webhook did."""

    received: int
    applied: int
    unchanged: int
    ignored: int = Field(description="Statuses clicktrail does not record (queued, accepted…).")
    unknown: list[str] = Field(description="Ids of receipts that named no known message.")


# -- network lists for bot filtering (docs/bots.md) ---------------------------------------------

RangeKind = Literal[
    "hosting", "cdn", "crawler", "scanner", "mobile", "relay", "residential", "vpn", "tor"
]


class NetworkRangeIn(_Request):
    """One range to add to a network list."""

    cidr: Annotated[
        Text,
        Field(min_length=1, max_length=64, examples=["203.0.113.0/24"],
              description="An IPv4 or IPv6 range or address; stored normalized."),
    ]  # fmt: skip
    kind: RangeKind | None = Field(default=None, description="Default: the body's `kind`.")
    owner: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="Default: the body's `owner`."
    )


class NetworkRangesAdd(_Request):
    """Ranges to add to a workspace's network list (created when new); all or nothing."""

    ranges: Annotated[list[NetworkRangeIn], Field(min_length=1, max_length=10_000)]
    kind: RangeKind | None = Field(
        default=None, description="Kind of the ranges that name none (default `hosting`)."
    )
    owner: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="Owner of the ranges that name none."
    )


class NetworkRangesAdded(_Response):
    """What adding ranges did."""

    name: str = Field(description="The list.")
    added: int
    updated: int = Field(description="Ranges already in the list whose kind or owner changed.")
    unchanged: int = Field(description="Ranges already in the list as given.")


class NetworkListOut(_Response):
    """A workspace's network list."""

    name: str
    ranges: int
    kinds: list[str]
    created_at: Time
    added_at: Time = Field(description="When its newest range was added.")


class NetworkListPage(_Page):
    """A page of the workspace's network lists, by name."""

    items: list[NetworkListOut]


class NetworkRangeOut(_Response):
    """One range of a network list."""

    cidr: str
    kind: str
    owner: str
    created_at: Time


class NetworkRangePage(_Page):
    """A page of a network list's ranges, by CIDR text."""

    items: list[NetworkRangeOut]


# -- API keys (docs/api.md#api-keys) ------------------------------------------------------------

Expiry = Annotated[
    Text | int,
    Field(description="ISO 8601 time (no zone: UTC) or Unix seconds; must be in the future.",
          examples=["2027-03-01T00:00:00Z", 1803859200]),
]  # fmt: skip
Duration = Annotated[
    Text | int,
    Field(description="A duration: `90d`, `12h`, `30m`, `45s`, `2w`, or whole seconds.",
          examples=["90d", 3600]),
]  # fmt: skip


class KeyCreate(_Request):
    """A new API key of the workspace: a label and an optional expiry (one of two forms)."""

    name: Annotated[Text, Field(max_length=200)] = Field(
        default="default", description="What the key is for.", examples=["order mailer"]
    )
    expires_at: Expiry | None = None
    expires_in: Duration | None = None


class KeyRotate(_Request):
    """How to rotate a key: a grace period for the old key, and the new key's expiry."""

    grace: Duration | None = Field(
        default=None,
        description="How long the old key keeps working (at most 30 days); default: it is "
        "revoked at once.",
    )
    expires_at: Expiry | None = None
    expires_in: Duration | None = None


class KeyOut(_Response):
    """An API key as lists show it: never its secret nor its hash."""

    id: str = Field(examples=["key_4CZtUbcQ9f1x"])
    prefix: str = Field(description="The key's first 10 characters, to recognise it.")
    name: str
    state: Literal["active", "expired", "revoked"]
    scopes: str | None = Field(description="null: full access (scopes are not enforced yet).")
    created_at: Time
    last_used_at: Time | None = Field(description="Recorded at most once a minute.")
    expires_at: Time | None
    revoked_at: Time | None


class KeyCreated(KeyOut):
    """A new API key, with its secret: shown this once, stored only as a hash."""

    key: str = Field(description="The secret: send it as `Authorization: Bearer <key>`.")


class KeyRotated(_Response):
    """What rotating did: the new key (with its secret) and the old one as it is now."""

    new: KeyCreated
    old: KeyOut


class KeyPage(_Page):
    """A page of the workspace's API keys, oldest first (revoked and expired ones too)."""

    items: list[KeyOut]
