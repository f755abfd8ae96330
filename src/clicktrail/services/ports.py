"""Ports: the small interfaces services need from adapters, and the records they exchange."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from clicktrail.domain.bots.model import Verdict

# ClickRecord lives in the domain with its field order (the click codec); re-exported here.
from clicktrail.domain.clicks import ClickRecord as ClickRecord
from clicktrail.domain.status import Status


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
    variant: str | None = None  # the campaign variant it carries (docs/experiments.md)


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
