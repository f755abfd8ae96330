"""Reading the workspace's things page by page: domains, lists, contacts, campaigns,
messages and clicks, for the API.

Pages are keyset-paginated: each resource has a stable order and a unique key (a domain's host,
a list's name, a contact's phone, a campaign's, message's or click's public id), and the cursor
carries the key of the last item shown. The cursor is opaque to clients (base64url of a small
JSON object naming the resource), holds no integer key, and a cursor of one resource is refused
by another. Every read is scoped to the workspace of the API key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from clicktrail.domain.bots.model import VERDICTS
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.models import Campaign, Domain, Workspace
from clicktrail.domain.status import Status, parse_status
from clicktrail.services.campaigns import CampaignStore, get_campaign
from clicktrail.services.contacts import ContactStore
from clicktrail.services.exports import ClickEvent, MessageRecord, time_param

if TYPE_CHECKING:
    # Annotations only: services.workspaces imports API keys, which import this module.
    from clicktrail.services.workspaces import WorkspaceStore

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ContactList:
    """A named list of contacts."""

    name: str
    members: int
    created_us: int


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact as the API shows it (no internal key)."""

    phone: str
    external_id: str | None
    first_name: str | None
    attributes: dict[str, object]
    opted_out: bool
    created_us: int
    updated_us: int


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign with the names of what it points at and its times."""

    campaign: Campaign
    domain: str
    list_name: str | None
    created_us: int
    sent_us: int | None
    segment: str | None = None  # the audience segment's slug (docs/segments.md)


@dataclass(frozen=True)
class Page(Generic[T]):
    """Up to `limit` items and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Listing(Protocol):
    """Paged reads of a workspace's things (implemented by `storage.listing.ListingQueries`).

    Each `*_page` returns up to `limit` items strictly after the key `after` (None: from the
    start) in the resource's order.
    """

    def domains_page(self, workspace_id: int, after: str | None, limit: int) -> list[Domain]: ...
    def lists_page(self, workspace_id: int, after: str | None, limit: int) -> list[ContactList]: ...
    def contacts_page(
        self, workspace_id: int, list_name: str | None, after: str | None, limit: int
    ) -> list[ContactView]: ...
    def contact(self, workspace_id: int, ref: str) -> ContactView | None: ...
    def campaigns_page(
        self, workspace_id: int, after: str | None, limit: int
    ) -> list[CampaignView]: ...
    def campaign_view(self, campaign_id: int) -> CampaignView: ...
    def messages_page(
        self,
        workspace_id: int,
        campaign_id: int | None,
        status: str | None,
        after: str | None,
        limit: int,
    ) -> list[MessageRecord]: ...
    def message(self, workspace_id: int, public_id: str) -> MessageRecord | None: ...
    def clicks_page(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        verdict: str | None,
        after: str | None,
        limit: int,
    ) -> list[ClickEvent]: ...


def page_limit(raw: str | None) -> int:
    """Return the page size asked for (default 50). Raises `InvalidInput` unless 1..500."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def encode_cursor(kind: str, after: str) -> str:
    """Return the opaque cursor that continues `kind` after the key `after`."""
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """Return the key a cursor of `kind` continues after (None without a cursor).

    Raises `InvalidInput` (field ``cursor``) for a malformed cursor or one of another resource.
    """
    if cursor is None or cursor == "":
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("a"), str):
        raise InvalidInput(
            f"cursor is not one this API gave for {kind}: pass next_cursor back as it came",
            field="cursor",
        )
    return str(data["a"])


def page_of(kind: str, rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """The page of `rows` (read `limit` + 1 of them: one more says another page follows),
    with the cursor of a `kind` listing after its last item, by `key`."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(kind, key(items[-1])) if more and items else None)


def list_domains(listing: Listing, ws: Workspace, limit: int, cursor: str | None) -> Page[Domain]:
    """Return a page of the workspace's domains, by host."""
    after = decode_cursor("domains", cursor)
    return page_of(
        "domains", listing.domains_page(ws.id, after, limit + 1), limit, lambda d: d.host
    )


def get_domain(store: WorkspaceStore, ws: Workspace, host: str) -> Domain:
    """Return the workspace's domain `host`. Raises `NotFound`."""
    name = host.strip().rstrip(".").lower()
    for d in store.list_domains(ws.id):
        if d.host == name:
            return d
    raise NotFound(f"domain {host!r} is not registered in this workspace", field="host")


def list_contact_lists(
    listing: Listing, ws: Workspace, limit: int, cursor: str | None
) -> Page[ContactList]:
    """Return a page of the workspace's contact lists, by name."""
    after = decode_cursor("lists", cursor)
    return page_of("lists", listing.lists_page(ws.id, after, limit + 1), limit, lambda x: x.name)


def list_contacts(
    store: ContactStore,
    listing: Listing,
    ws: Workspace,
    limit: int,
    cursor: str | None,
    list_name: str | None = None,
) -> Page[ContactView]:
    """Return a page of the workspace's contacts (of one list when `list_name`), by phone.

    Raises `NotFound` for an unknown list.
    """
    after = decode_cursor("contacts", cursor)
    if list_name is not None and store.find_list(ws.id, list_name) is None:
        raise NotFound(f"contact list {list_name!r} not found", field="list")
    rows = listing.contacts_page(ws.id, list_name, after, limit + 1)
    return page_of("contacts", rows, limit, lambda c: c.phone)


def get_contact(listing: Listing, ws: Workspace, ref: str) -> ContactView:
    """Return the contact whose phone (E.164) or external id is `ref`. Raises `NotFound`."""
    found = listing.contact(ws.id, ref)
    if found is None:
        raise NotFound(f"contact {ref!r} not found", field="contact")
    return found


def list_campaigns(
    listing: Listing, ws: Workspace, limit: int, cursor: str | None
) -> Page[CampaignView]:
    """Return a page of the workspace's campaigns, newest first."""
    after = decode_cursor("campaigns", cursor)
    rows = listing.campaigns_page(ws.id, after, limit + 1)
    return page_of("campaigns", rows, limit, lambda v: v.campaign.public_id)


def campaign_view(store: CampaignStore, listing: Listing, ws: Workspace, ref: str) -> CampaignView:
    """Return campaign `ref` (slug or id). Raises `NotFound`."""
    return listing.campaign_view(get_campaign(store, ws, ref).id)


def list_messages(
    store: CampaignStore,
    listing: Listing,
    ws: Workspace,
    limit: int,
    cursor: str | None,
    *,
    campaign: str | None = None,
    status: str | None = None,
) -> Page[MessageRecord]:
    """Return a page of the workspace's messages (of one campaign, in one status), oldest
    first. Raises `InvalidInput` for an unknown status, `NotFound` for an unknown campaign."""
    after = decode_cursor("messages", cursor)
    st: Status | None = None
    if status:
        st = parse_status(status)
        if st is None:
            allowed = ", ".join(s.value for s in Status)
            raise InvalidInput(f"status {status!r} is not one of {allowed}", field="status")
    campaign_id = get_campaign(store, ws, campaign).id if campaign else None
    rows = listing.messages_page(ws.id, campaign_id, st.value if st else None, after, limit + 1)
    return page_of("messages", rows, limit, lambda m: m.message_id)


def get_message(listing: Listing, ws: Workspace, message_id: str) -> MessageRecord:
    """Return the workspace's message `message_id`. Raises `NotFound`."""
    found = listing.message(ws.id, message_id)
    if found is None:
        raise NotFound(f"message {message_id!r} not found", field="message")
    return found


def list_clicks(
    store: CampaignStore,
    listing: Listing,
    ws: Workspace,
    limit: int,
    cursor: str | None,
    *,
    campaign: str | None = None,
    since: str | None = None,
    until: str | None = None,
    verdict: str | None = None,
) -> Page[ClickEvent]:
    """Return a page of the workspace's requests on tracked links, oldest first.

    `since` is inclusive, `until` exclusive. Raises `InvalidInput` for a bad time or verdict,
    `NotFound` for an unknown campaign.
    """
    after = decode_cursor("clicks", cursor)
    since_us, until_us = time_param(since, "since"), time_param(until, "until")
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidInput(
            f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}", field="verdict"
        )
    campaign_id = get_campaign(store, ws, campaign).id if campaign else None
    rows = listing.clicks_page(ws.id, campaign_id, since_us, until_us, verdict, after, limit + 1)
    return page_of("clicks", rows, limit, lambda c: c.click_id)
