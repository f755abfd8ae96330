"""Ports: the small interfaces services need from adapters, and the records they exchange."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from clicktrail.domain.bots.model import Verdict

# ClickRecord lives in the domain with its field order (the click codec); re-exported here.
from clicktrail.domain.clicks import ClickRecord as ClickRecord
from clicktrail.domain.clicks import InboxBatch
from clicktrail.domain.models import (
    Campaign,
    CampaignOptions,
    Contact,
    ContactInput,
    Domain,
    Receipt,
    Workspace,
)
from clicktrail.domain.status import Status

if TYPE_CHECKING:
    from clicktrail.services.keys import ApiKey
    from clicktrail.services.receipts import ReceiptOutcome


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A wrapped message ready to be stored as queued, with its tokens.

    `tokens` holds (token, link_id, destination or None when the link URL is the destination).
    """

    public_id: str
    campaign_id: int
    contact_id: int
    to_phone: str
    body: str
    encoding: str
    segments: int
    queued_us: int
    tokens: tuple[tuple[str, int, str | None], ...]


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """What a provider needs to send one message."""

    message_id: str
    to: str
    body: str
    encoding: str
    segments: int


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider answered for one message."""

    message_id: str
    status: Status
    provider_message_id: str | None = None
    error_code: str | None = None
    # Why it failed, in the provider's words (kept on the message).
    error_message: str | None = None
    # With status `queued`: the provider refused for now (429, 5xx, timeout); try again after
    # this many seconds at the earliest (None: the sender's own backoff decides).
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request on a token with what classification needs: the raw signals and the times
    of its message (µs since epoch; None when unknown)."""

    click_id: str
    campaign_id: int
    message_id: int
    contact_id: int
    link_id: int
    at_us: int
    method: str
    ip: str | None
    user_agent: str | None
    headers: dict[str, str]
    sent_us: int | None
    delivered_us: int | None
    verdict: Verdict | None = None  # as stored (None: never classified)
    row_id: int = 0  # the clicks row's id (0: not stored yet)
    final: bool = False  # as stored: the verdict is final (behaviour applied)

    @property
    def settle_key(self) -> tuple[int, int, int]:
        """The order in which requests are finalized: campaign, time, row id."""
        return (self.campaign_id, self.at_us, self.row_id)


@dataclass(frozen=True, slots=True)
class Selection:
    """The stored requests a re-classification covers: all, one campaign's, or those from a
    time on (both: the campaign's from that time on)."""

    campaign_id: int | None = None
    since_us: int | None = None

    def covers(self, campaign_id: int, at_us: int) -> bool:
        """Return whether a request of `campaign_id` at `at_us` is selected."""
        return (self.campaign_id is None or campaign_id == self.campaign_id) and (
            self.since_us is None or at_us >= self.since_us
        )


class RequestClassifier(Protocol):
    """Request-level bot classification (implemented over `clicktrail.signals`).

    A request is judged with its own workspace's network lists (found from `campaign_id`).
    """

    def classify(self, request: StoredRequest) -> Verdict:
        """Return the verdict of one request from its own signals."""
        ...

    def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
        """Return the kind of network of `ip` (hosting, mobile, relay…), if known, with the
        network lists of the workspace of `campaign_id` (None: the installation's only)."""
        ...


class SmsProvider(Protocol):
    """Sends SMS. Outbox today; Twilio, SMPP and HTTP providers implement the same port."""

    name: str

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Hand `batch` to the provider; return one result per message, in order.

        A result with status `queued` means the provider did not take the message (yet).
        """
        ...

    def reconcile(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Return results for the messages of `batch` the provider already took.

        Called on resume for messages that were handed over when the sender died. A provider
        that cannot know returns [] (those messages are then sent again).
        """
        ...


class Store(Protocol):
    """Every area's persistence at once, while it lasts (implemented by
    `storage.sql_store.SqlStore`, the union of the area repositories).

    Services take their area's small port (`services.workspaces.WorkspaceStore`,
    `contacts.ContactStore`, `campaigns.CampaignStore`, `receipts.ReceiptStore`,
    `bots.ClickStore`, `networks.NetworkListStore`, `keys.KeyAuthStore`…); this one remains for
    the holders not moved yet: the web routes, the sending service and the demo."""

    def create_workspace(
        self, public_id: str, slug: str, name: str, is_demo: bool, now_us: int
    ) -> Workspace: ...
    def list_workspaces(self) -> list[Workspace]: ...
    def find_workspace(self, ref: str) -> Workspace | None: ...
    # Authentication (services/keys.py): the key with a hash, revoked and expired ones too,
    # with its workspace in one indexed query; its last use set when unset or <= stale_us.
    # Managing keys goes through the smaller port `services.keys.KeyStore`.
    def api_key_for_hash(self, key_hash: str) -> tuple[Workspace, ApiKey] | None: ...
    def record_key_use(self, key_id: int, now_us: int, stale_us: int) -> None: ...
    def add_domain(self, domain: Domain, now_us: int) -> Domain: ...
    def list_domains(self, workspace_id: int) -> list[Domain]: ...
    def get_domain(self, domain_id: int) -> Domain: ...
    def upsert_contacts(
        self,
        workspace_id: int,
        contacts: Sequence[ContactInput],
        list_name: str | None,
        now_us: int,
    ) -> tuple[int, int]: ...
    def find_list(self, workspace_id: int, name: str) -> int | None: ...
    def count_contacts(self, workspace_id: int) -> int: ...
    def attribute_names(self, workspace_id: int) -> set[str]: ...
    def audience(
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int
    ) -> list[Contact]: ...
    def find_contact(self, workspace_id: int, phone_or_external_id: str) -> Contact | None: ...
    def longest_values(self, workspace_id: int, list_id: int | None) -> list[dict[str, str]]: ...
    def create_campaign(
        self,
        *,
        public_id: str,
        workspace_id: int,
        slug: str,
        name: str,
        template: str,
        domain_id: int,
        list_id: int | None,
        links: Sequence[tuple[int, str, str, dict[str, str]]],
        now_us: int,
        options: CampaignOptions | None = None,
    ) -> Campaign: ...
    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None: ...
    def list_campaigns(self, workspace_id: int) -> list[Campaign]: ...
    def set_campaign_status(
        self, campaign_id: int, status: str, now_us: int | None = None
    ) -> None: ...
    def apply_receipts(
        self,
        workspace_id: int,
        receipts: Sequence[Receipt],
        *,
        skip_unknown: bool,
        source: str,
        now_us: int,
    ) -> ReceiptOutcome: ...
    def queued_or_sent_ids(self, campaign_id: int, limit: int) -> list[str]: ...
    def delivery_times(
        self, message_ids: Iterable[int]
    ) -> dict[int, tuple[int | None, int | None]]: ...
    def requests_to_finalize(
        self,
        before_us: int,
        limit: int,
        after: tuple[int, int, int] | None = None,
        also: Selection | None = None,
    ) -> list[tuple[int, int, int]]: ...
    def requests_between(
        self, campaign_id: int, from_us: int, to_us: int
    ) -> list[StoredRequest]: ...
    def requests_page(
        self,
        after_id: int,
        limit: int,
        campaign_id: int | None,
        since_us: int | None,
        unclassified_only: bool = False,
    ) -> list[tuple[int, StoredRequest]]: ...
    def take_inbox(self, limit: int) -> InboxBatch | None: ...
    def put_inbox(self, batch: InboxBatch, verdicts: Sequence[Verdict]) -> int: ...
    def save_verdicts(self, verdicts: Sequence[tuple[str, Verdict, bool]]) -> None: ...
    def link_count(self, campaign_id: int) -> int: ...
    def record_early_sightings(self, sightings: Sequence[tuple[str, int, int]]) -> None: ...
    def listed_early_entities(self, since_us: int, min_campaigns: int) -> set[str]: ...
    def is_registered_host(self, host: str) -> bool: ...


class Target(NamedTuple):
    """What a token resolves to: ids for the click record, the destination and the host.

    A named tuple of ints and strings: the garbage collector stops tracking such tuples, so a
    token cache of 100,000 targets adds nothing to the redirect's collection pauses.
    """

    campaign_id: int
    link_id: int
    message_id: int
    contact_id: int
    destination: str
    host: str
    path_prefix: str
    # The Location is `destination`, or `cid_head + click_id + cid_tail` when `add_click_id`.
    cid_head: str = ""
    cid_tail: str = ""
    add_click_id: bool = False
