"""Wrap-only records and their port: the items a sender gives, what became of each, the
messages to store and the `WrapStore` that stores them (`storage.wrapping.WrapQueries`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clicktrail.domain.models import Campaign, CampaignOptions, Contact, ContactInput
from clicktrail.domain.status import Status

MAX_ITEMS = 10_000
MAX_CLIENT_REF = 200
EXTERNAL = "external"  # the status of a wrap-only campaign, and its messages' provider
WRAPPABLE = ("draft", EXTERNAL)


@dataclass(frozen=True, slots=True)
class WrapItem:
    """One message to wrap: the recipient (`to` or `external_id`), the text (None: the
    campaign's template) and the sender's key for the message."""

    to: str | None = None
    external_id: str | None = None
    region: str | None = None
    first_name: str | None = None
    text: str | None = None
    client_ref: str | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """A wrap-only campaign to use, created on first use (`name` makes the slug unless given).

    Link numbers of `link_roles` and `link_utm` count from 0 over the links of `template`, or
    of the first item's text when there is no template.
    """

    name: str
    slug: str | None = None
    domain: str | None = None
    template: str | None = None
    link_roles: Mapping[int, str] = field(default_factory=dict)
    link_utm: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    options: CampaignOptions = field(default_factory=CampaignOptions)


@dataclass(frozen=True, slots=True)
class WrappedLink:
    """One link of a wrapped message: its position (from 0), token, short URL and where the
    short URL leads (before UTM and click-id parameters)."""

    index: int
    token: str
    short_url: str
    destination: str


@dataclass(frozen=True, slots=True)
class WrapResult:
    """What became of one item. With `opted_out`, no message exists and the message fields are
    None. `created` is false when an earlier wrap of the same key made the message."""

    index: int
    to: str
    external_id: str | None
    opted_out: bool
    created: bool = False
    message_id: str | None = None
    text: str | None = None
    encoding: str | None = None
    segments: int | None = None
    status: str | None = None
    links: tuple[WrappedLink, ...] = ()


@dataclass
class WrapOutcome:
    """What a wrap call did, item by item, in request order."""

    campaign: Campaign
    items: list[WrapResult]
    created: int = 0
    existing: int = 0
    opted_out: int = 0


@dataclass(frozen=True, slots=True)
class StoredWrap:
    """A message already stored for a (contact, client_ref) key, with its tokens as
    (token, link position, destination)."""

    public_id: str
    contact_id: int
    client_ref: str
    text_digest: str | None
    body: str
    encoding: str
    segments: int
    status: str
    tokens: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A wrapped message to store. `contact_id` None: the new contact with `phone`. Tokens are
    (token, link position, destination or None when the link's URL is the destination)."""

    public_id: str
    contact_id: int | None
    phone: str
    client_ref: str
    text_digest: str
    body: str
    encoding: str
    segments: int
    tokens: tuple[tuple[str, int, str | None], ...]


class WrapStore(Protocol):
    """Persistence of wrap-only messages (implemented by `storage.wrapping.WrapQueries`)."""

    def contacts_by_phone(self, workspace_id: int, phones: Sequence[str]) -> dict[str, Contact]:
        """Return the workspace's contacts with these phones, by phone."""
        ...

    def contacts_by_external_id(
        self, workspace_id: int, external_ids: Sequence[str]
    ) -> dict[str, list[Contact]]:
        """Return the workspace's contacts with these external ids (several may share one)."""
        ...

    def wrapped_messages(
        self, campaign_id: int, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], StoredWrap]:
        """Return the campaign's messages with these (contact id, client_ref) keys."""
        ...

    def save_wrapped(
        self,
        *,
        workspace_id: int,
        campaign_id: int,
        new_contacts: Sequence[ContactInput],
        new_links: Mapping[int, str],
        messages: Sequence[PendingMessage],
        status: Status,
        provider: str,
        now_us: int,
    ) -> bool:
        """Store new contacts, links (position → URL) and messages with their tokens in one
        transaction, and make the campaign wrap-only.

        Returns False (nothing written) when the campaign is no longer a draft or wrap-only.
        Raises `Conflict` when a token, message key, contact or link was taken meanwhile.
        """
        ...
