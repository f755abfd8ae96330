"""Sending jobs' records and their storage port: job states, settings, what a job stores, what
the loop decides per message, counts and summaries, `SendJobStore` (implemented by
`storage.sending.SqlSendJobs`) and `SendingReposWithJobs`, the areas `send_campaign` uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.segments import SegmentQuery
from clicktrail.domain.sending import QuietHours
from clicktrail.domain.status import Status
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.ports import NewMessage, OutgoingSms

# Job states. `held`: nothing left to send but messages in doubt wait for an operator.
RUNNING, PAUSED, CANCELLED, HELD, DONE = "running", "paused", "cancelled", "held", "done"
JOB_STATES = (RUNNING, PAUSED, CANCELLED, HELD, DONE)
# Why a message was skipped (its `error_code`).
OPTED_OUT, INVALID_NUMBER = "opted_out", "invalid_number"
WRAP_BATCH = 1000  # contacts wrapped per commit


@dataclass(frozen=True)
class SendDefaults:
    """How jobs send unless told otherwise (from the settings, docs/configuration.md).

    `rate`: messages per second per sender number or messaging service (0: no limit);
    `max_attempts`/`max_age_s`: a message refused for now is retried with exponential backoff
    and jitter (`backoff_s` doubling up to `backoff_cap_s`) until this many attempts or this
    long after its first, then failed; `batch_size`: messages per claim and provider call;
    `lease_s`: how long a job's lease lasts without renewal (another process takes over a job
    whose sender stopped renewing).
    """

    rate: float = 10.0
    max_attempts: int = 8
    max_age_s: int = 6 * 3600
    batch_size: int = 100
    backoff_s: float = 2.0
    backoff_cap_s: float = 300.0
    lease_s: float = 60.0
    provider: str = "outbox"


@dataclass(frozen=True)
class JobSpec:
    """What a caller asks of a job; None keeps what the job has (or the default when new).

    `quiet_hours` ``HH:MM-HH:MM`` in the recipient's local time, '' to clear.
    """

    provider: str | None = None
    rate: float | None = None
    quiet_hours: str | None = None
    max_attempts: int | None = None
    max_age_s: int | None = None

    def check(self) -> None:
        """Raise `InvalidInput` naming the first bad field."""
        if self.rate is not None and not 0 <= self.rate <= 100_000:
            raise InvalidInput(
                f"rate must be between 0 (no limit) and 100000 messages per second, got {self.rate}",
                field="rate",
            )
        if self.quiet_hours:
            QuietHours.parse(self.quiet_hours)
        if self.max_attempts is not None and not 1 <= self.max_attempts <= 100:
            raise InvalidInput(
                f"max attempts must be between 1 and 100, got {self.max_attempts}",
                field="max_attempts",
            )
        if self.max_age_s is not None and not 1 <= self.max_age_s <= 30 * 86400:
            raise InvalidInput(
                f"max age must be between 1 second and 30 days, got {self.max_age_s} s",
                field="max_age",
            )
        if self.provider is not None and not self.provider.strip():
            raise InvalidInput("provider is empty", field="provider")


@dataclass(frozen=True)
class SendJob:
    """A campaign's sending job as stored."""

    campaign_id: int
    state: str
    provider: str
    rate: float
    quiet_hours: str | None
    max_attempts: int
    max_age_s: int
    origin: str
    wrapped_through: int
    wrapped: int
    skipped_opted_out: int
    skipped_invalid: int
    lease_owner: str | None
    lease_until_us: int | None
    last_error: str | None
    created_us: int
    updated_us: int
    finished_us: int | None


@dataclass(frozen=True)
class DueMessage:
    """A queued message whose time has come, with what the loop decides on."""

    id: int
    sms: OutgoingSms
    attempts: int
    first_attempt_us: int | None
    opted_out: bool


@dataclass(frozen=True)
class Outcome:
    """What to write for one message after a provider call (or a decision not to make one).

    `status`: sent, failed, queued (retry at `next_attempt_us`), unknown or skipped.
    """

    message_id: str
    status: Status
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_us: int | None = None


@dataclass
class JobCounts:
    """Messages of a job by what happened to them (test sends apart)."""

    queued: int = 0  # due now
    deferred: int = 0  # queued for later: quiet hours or retry backoff
    sending: int = 0
    sent: int = 0  # handed to the provider (sent, delivered, undelivered, failed after sending)
    delivered: int = 0
    failed: int = 0  # refused by the provider or given up on; never sent
    cancelled: int = 0
    unknown: int = 0
    skipped_opted_out: int = 0
    skipped_invalid: int = 0
    segments: int = 0  # of the sent ones
    held_out: int = 0  # the campaign's holdout: never wrapped, never sent (services/holdouts.py)


class SendJobStore(Protocol):
    """Storage of sending jobs (implemented by `storage.sending.SqlSendJobs`)."""

    def get(self, campaign_id: int) -> SendJob | None: ...
    def create(self, job: SendJob) -> SendJob: ...
    def update_settings(self, campaign_id: int, spec: JobSpec, now_us: int) -> None: ...
    def acquire(
        self, campaign_id: int, owner: str, now_us: int, until_us: int, take_from: str | None
    ) -> bool: ...
    def renew(self, campaign_id: int, owner: str, until_us: int) -> bool: ...
    def release(self, campaign_id: int, owner: str) -> None: ...
    def set_state(
        self,
        campaign_id: int,
        state: str,
        now_us: int,
        *,
        expect: Sequence[str],
        last_error: str | None = None,
    ) -> bool: ...
    def cancel(self, campaign_id: int, now_us: int) -> int: ...
    def audience(
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int,
        segment: SegmentQuery | None = None,
    ) -> list[Contact]: ...  # fmt: skip
    def insert_wrapped(
        self,
        campaign_id: int,
        batch: Sequence[NewMessage],
        *,
        through: int,
        skipped_opted_out: int,
        skipped_invalid: int,
        now_us: int,
        phones_checked: Sequence[int] = (),
        phone_rules: str | None = None,
    ) -> None: ...
    def due(self, campaign_id: int, now_us: int, limit: int) -> list[DueMessage]: ...
    def next_due(self, campaign_id: int) -> int | None: ...
    def claim(self, campaign_id: int, ids: Sequence[int], now_us: int) -> set[int]: ...
    def defer(self, items: Sequence[tuple[int, int]]) -> None: ...
    def record(self, provider: str, outcomes: Sequence[Outcome], now_us: int) -> None: ...
    def in_flight(self, campaign_id: int) -> list[OutgoingSms]: ...
    def counts(self, campaign_id: int, now_us: int) -> JobCounts: ...
    def runnable(self, now_us: int) -> list[tuple[int, int, str | None, int | None]]: ...
    def release_unknown(self, campaign_id: int, resend: bool, now_us: int) -> int: ...
    def insert_test_message(self, message: NewMessage) -> int: ...
    def claim_test(self, message_id: int, now_us: int) -> bool: ...
    def campaign_of(self, campaign_id: int) -> tuple[Workspace, Campaign] | None: ...


class SendingReposWithJobs(CampaignRepos, Protocol):
    """The repositories of sending with its jobs' storage, for `send_campaign`."""

    @property
    def send_jobs(self) -> SendJobStore:
        """Sending jobs and their messages' send state."""
        ...


@dataclass
class SendSummary:
    """What one run of a send did (the job's totals: `sending.Sending.status`).

    `state`: the job's state when the run ended (done, held, paused, cancelled; running when
    another process continues it).
    """

    campaign: str
    created: int = 0
    sent: int = 0
    failed: int = 0
    segments: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    state: str = "running"
    deferred: int = 0
    retried: int = 0
    unknown: int = 0
    skipped_opted_out: int = 0
    skipped_invalid: int = 0
    held_out: int = 0  # contacts of the audience this run left out: the campaign's holdout


@dataclass
class SendStatus:
    """A job's state and its messages' counts, for `campaign status` and the API."""

    campaign: str
    slug: str
    state: str  # a job state, or "not_started"
    provider: str | None
    rate: float | None
    quiet_hours: str | None
    created: int
    counts: JobCounts
    running: bool  # a live process holds the job
    lease_owner: str | None
    last_error: str | None
    created_us: int | None
    finished_us: int | None


@dataclass(frozen=True)
class TestSendResult:
    """What a test send did."""

    message_id: str
    to: str
    body: str
    status: str
    error_code: str | None
    error_message: str | None
    links: list[str] = field(default_factory=list)


def check_sendable(campaign: Campaign) -> None:
    """Raise `Conflict` when the campaign is wrap-only (clicktrail never sends it)."""
    if campaign.status == "external":
        raise Conflict(
            f"campaign {campaign.slug!r} is wrap-only: its messages go out through your own "
            "sender, never through clicktrail",
            field="campaign",
        )


def check_startable(campaign: Campaign, job: SendJob) -> None:
    """Raise `Conflict` when the campaign's job cannot run: wrap-only, cancelled, sent, paused."""
    check_sendable(campaign)
    if job.state == CANCELLED:
        raise Conflict(f"campaign {campaign.slug!r} was cancelled", field="campaign")
    if job.state == DONE or campaign.status == "sent":
        raise Conflict(f"campaign {campaign.slug!r} has already been sent", field="campaign")
    if job.state == PAUSED:
        raise Conflict(
            f"campaign {campaign.slug!r} is paused: `clicktrail campaign resume {campaign.slug}`",
            field="campaign",
        )
