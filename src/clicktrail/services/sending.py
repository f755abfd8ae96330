"""Sending jobs: a campaign's send as a durable job that resumes, pauses, retries and never
sends one recipient the same message twice (docs/providers.md, "Sending jobs").

A job lives in the database (`send_jobs`, one per campaign; per-message attempts and next
attempt time on `messages`). One process at a time runs it, holding a lease. The loop:

1. **wrap** the audience in batches (opted-out contacts and invalid numbers are skipped and
   counted, never wrapped), each batch committed with how far wrapping got;
2. **recover** messages a dead sender left `sending`: ask the provider (`reconcile`), then
   resend only what is safe to resend (below), else hold them as `unknown`;
3. **send**: take tokens from the rate limiter, claim that many due messages (`queued` →
   `sending`, committed), hand them to the provider, commit what it answered right away.
   Transient refusals come back `queued` with a backoff; permanent ones fail at once. Between
   batches the loop reads the job's state, so a pause or cancel stops it cleanly.

**The in-doubt rule.** A message is *in doubt* when it was handed to a provider and the
answer was lost (the sender died, or the provider call raised). It is sent again only when
that cannot make a second copy: the provider's `reconcile` knows every message it took
(`reconcile_complete`, e.g. the outbox reads its own file), or the provider sends with an
idempotency key so a repeat is dropped on its side (`idempotent`). Otherwise the message
becomes `unknown`, and an operator decides (`clicktrail campaign release`). Providers declare
these as class attributes; a provider without them is assumed to have neither.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.sending import QuietHours, TokenBucket, retry_delay
from clicktrail.domain.status import Status
from clicktrail.domain.template import parse_template
from clicktrail.services.campaigns import TOKEN_RETRIES, SendSummary, wrap_for_contact
from clicktrail.services.ports import NewMessage, OutgoingSms, SendResult, SmsProvider, Store

log = logging.getLogger("clicktrail.sending")

# Job states. `held`: nothing left to send but messages in doubt wait for an operator.
RUNNING, PAUSED, CANCELLED, HELD, DONE = "running", "paused", "cancelled", "held", "done"
JOB_STATES = (RUNNING, PAUSED, CANCELLED, HELD, DONE)
# Why a message was skipped (its `error_code`).
OPTED_OUT, INVALID_NUMBER = "opted_out", "invalid_number"
# Seconds between reads of the job's state (pause, cancel) and lease renewals while sending.
POLL_S = 1.0
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
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int
    ) -> list[Contact]: ...
    def insert_wrapped(
        self,
        campaign_id: int,
        batch: Sequence[NewMessage],
        *,
        through: int,
        skipped_opted_out: int,
        skipped_invalid: int,
        now_us: int,
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


# -- the in-doubt rule and the rate limiter -----------------------------------------------------


def sender_key(provider: SmsProvider) -> str:
    """Return what the rate applies to: the provider's sender (number or messaging service,
    its `sender_key` attribute) or, without one, the provider's name."""
    return str(getattr(provider, "sender_key", None) or provider.name)


class _SharedBucket:
    """A token bucket shared by the jobs of one `Sending` (one process) that send through the
    same sender at the same rate. Times are the service clock's, in seconds."""

    def __init__(self, rate: float, now: float) -> None:
        self.lock = threading.Lock()
        self.bucket = TokenBucket(rate, now=now)


# -- recipients: validity and time zones ----------------------------------------------------------


def is_valid_phone(phone: str) -> bool:
    """Return True when `phone` (E.164) is a valid number (phonenumbers' metadata)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(phone, None)))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _zones(names: tuple[str, ...]) -> tuple[tzinfo, ...]:
    zones: list[tzinfo] = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (UTC,)


def time_zones(phone: str) -> tuple[tzinfo, ...]:
    """Return the time zones of `phone`'s number range (phonenumbers' geocoding data); UTC when
    the range has none (``Etc/Unknown``)."""
    try:
        names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        names = ()
    return _zones(tuple(n for n in names if n != "Etc/Unknown"))


# -- processes and leases -------------------------------------------------------------------------


def new_owner() -> str:
    """Return a lease owner id for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(owner: str) -> bool:
    """Return True when `owner` names a process of this host that no longer runs (its lease can
    be taken over at once, without waiting for it to expire)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- the service ----------------------------------------------------------------------------------


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


@dataclass
class _Run:
    """One run of a job by this process."""

    store: Store
    jobs: SendJobStore
    workspace: Workspace
    campaign: Campaign
    provider: SmsProvider
    job: SendJob
    owner: str
    clock: Callable[[], int]
    sleep: Callable[[float], None]
    defaults: SendDefaults
    batch_size: int
    wrap_batch: int
    jitter: Callable[[], float]
    progress: Callable[[str, int], None] | None
    should_stop: Callable[[], bool]
    stop_pauses: bool
    summary: SendSummary
    buckets: Callable[[str, float], _SharedBucket]


class Sending:
    """The sending use cases over one store, its job storage and a provider factory.

    `provider_for(workspace, spec)` returns the provider a job names (``outbox`` or
    ``outbox:PATH``; other names as the composition root knows them). Without `background`,
    this process never runs jobs on threads (`start_in_background` only records the job: a
    `clicktrail campaign send` runs it).
    """

    def __init__(
        self,
        store: Store,
        jobs: SendJobStore,
        provider_for: Callable[[Workspace, str], SmsProvider],
        *,
        defaults: SendDefaults | None = None,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        background: bool = True,
    ) -> None:
        from clicktrail.services.clock import now_us

        self.store = store
        self.jobs = jobs
        self.provider_for = provider_for
        self.defaults = defaults or SendDefaults()
        self.clock = clock or now_us
        self.sleep = sleep
        self.jitter = jitter
        self.worker = SendWorker(self, enabled=background)
        self._buckets: dict[tuple[str, float], _SharedBucket] = {}
        self._buckets_lock = threading.Lock()

    def bucket_for(self, key: str, rate: float) -> _SharedBucket:
        """Return the rate limiter of sender `key` at `rate` (shared by this process's jobs)."""
        with self._buckets_lock:
            found = self._buckets.get((key, rate))
            if found is None:
                found = self._buckets[(key, rate)] = _SharedBucket(rate, self.clock() / 1e6)
            return found

    # -- starting and running -----------------------------------------------------------------

    def open_job(
        self,
        workspace: Workspace,
        campaign: Campaign,
        spec: JobSpec,
        *,
        origin: str,
        provider: SmsProvider | None = None,
    ) -> SendJob:
        """Create the campaign's job (state running) or apply `spec` to the existing one.

        A new job's rate is `spec.rate`, else the provider's `default_rate` when it declares one
        (the outbox: 0, it is a file), else the default. Raises `InvalidInput` for a bad spec or
        an unknown provider; `Conflict` when the campaign was sent, cancelled, or is paused
        (resume it instead).
        """
        spec.check()
        _check_sendable(campaign)
        now = self.clock()
        job = self.jobs.get(campaign.id)
        if job is None:
            if campaign.status == "sent":
                raise Conflict(
                    f"campaign {campaign.slug!r} has already been sent", field="campaign"
                )
            d = self.defaults
            name = spec.provider or (provider.name if provider is not None else d.provider)
            if provider is None:
                provider = self.provider_for(workspace, name)  # raises for an unknown name
            declared = getattr(provider, "default_rate", None)
            rate = (
                spec.rate if spec.rate is not None else declared if declared is not None else d.rate
            )
            job = self.jobs.create(
                SendJob(
                    campaign_id=campaign.id,
                    state=RUNNING,
                    provider=name,
                    rate=float(rate),
                    quiet_hours=str(QuietHours.parse(spec.quiet_hours))
                    if spec.quiet_hours
                    else None,
                    max_attempts=spec.max_attempts or d.max_attempts,
                    max_age_s=spec.max_age_s or d.max_age_s,
                    origin=origin,
                    wrapped_through=0,
                    wrapped=0,
                    skipped_opted_out=0,
                    skipped_invalid=0,
                    lease_owner=None,
                    lease_until_us=None,
                    last_error=None,
                    created_us=now,
                    updated_us=now,
                    finished_us=None,
                )
            )
            self.store.set_campaign_status(campaign.id, "sending")
            return job
        _check_startable(campaign, job)
        if spec.provider is not None:
            self.provider_for(workspace, spec.provider)  # raises for an unknown name
        if spec != JobSpec():
            self.jobs.update_settings(campaign.id, spec, now)
        found = self.jobs.get(campaign.id)
        assert found is not None
        return found

    def run(
        self,
        workspace: Workspace,
        campaign: Campaign,
        provider: SmsProvider | None = None,
        *,
        progress: Callable[[str, int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        stop_pauses: bool = True,
        batch_size: int | None = None,
        wrap_batch: int = WRAP_BATCH,
    ) -> SendSummary:
        """Run the campaign's job in this thread until it is done, held, paused or cancelled.

        `provider` overrides the job's (the CLI passes the one it built); `should_stop` is read
        between batches: when it turns true the job is paused (`stop_pauses`, Ctrl-C) or just
        left for another process to continue (a server shutting down). Raises `Conflict` when
        another live process holds the job or the job cannot run (see `open_job`).
        """
        job = self.jobs.get(campaign.id)
        if job is None:
            raise Conflict(f"campaign {campaign.slug!r} has no sending job", field="campaign")
        _check_startable(campaign, job)
        provider = provider or self.provider_for(workspace, job.provider)
        now = self.clock()
        take_from = job.lease_owner if job.lease_owner and holder_is_dead(job.lease_owner) else None
        until = now + int(self.defaults.lease_s * 1e6)
        # One owner per run: two runs of this process never hold the job together either.
        owner = new_owner()
        if not self.jobs.acquire(campaign.id, owner, now, until, take_from):
            raise Conflict(
                f"campaign {campaign.slug!r} is being sent by another process "
                f"({job.lease_owner}); see `clicktrail campaign status {campaign.slug}`",
                field="campaign",
            )
        if job.state == HELD:  # a new run sends what was released since
            self.jobs.set_state(campaign.id, RUNNING, now, expect=(HELD,))
        run = _Run(
            store=self.store,
            jobs=self.jobs,
            workspace=workspace,
            campaign=campaign,
            provider=provider,
            job=job,
            owner=owner,
            clock=self.clock,
            sleep=self.sleep,
            defaults=self.defaults,
            batch_size=batch_size or self.defaults.batch_size,
            wrap_batch=wrap_batch,
            jitter=self.jitter,
            progress=progress,
            should_stop=should_stop,
            stop_pauses=stop_pauses,
            summary=SendSummary(campaign.public_id),
            buckets=self.bucket_for,
        )
        try:
            _execute(run)
        finally:
            self.jobs.release(campaign.id, owner)
        return run.summary

    def send(
        self,
        workspace: Workspace,
        campaign: Campaign,
        provider: SmsProvider | None = None,
        *,
        spec: JobSpec | None = None,
        origin: str = "cli",
        progress: Callable[[str, int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        batch_size: int | None = None,
        wrap_batch: int = WRAP_BATCH,
    ) -> SendSummary:
        """Open the campaign's job (`open_job`) and run it in this thread (`run`)."""
        self.open_job(workspace, campaign, spec or JobSpec(), origin=origin, provider=provider)
        return self.run(
            workspace,
            campaign,
            provider,
            progress=progress,
            should_stop=should_stop,
            batch_size=batch_size,
            wrap_batch=wrap_batch,
        )

    def start_in_background(
        self, workspace: Workspace, campaign: Campaign, spec: JobSpec
    ) -> SendJob:
        """Open the job (origin ``api``) and have this process's worker run it now."""
        job = self.open_job(workspace, campaign, spec, origin="api")
        self.worker.launch(campaign.id)
        return job

    # -- controlling ---------------------------------------------------------------------------

    def pause(self, campaign: Campaign) -> SendStatus:
        """Pause the campaign's job: its sender stops after the batch in hand (within about a
        second). Raises `Conflict` when there is no job or it is not running."""
        self._transition(campaign, PAUSED, expect=(RUNNING, HELD), verb="pause")
        return self.status(campaign)

    def resume(self, campaign: Campaign, *, launch: bool = False) -> SendStatus:
        """Set a paused job running again; with `launch`, this process's worker runs it.

        Raises `Conflict` when there is no job or it is not paused."""
        self._transition(campaign, RUNNING, expect=(PAUSED,), verb="resume")
        if launch:
            self.worker.launch(campaign.id)
        return self.status(campaign)

    def cancel(self, campaign: Campaign) -> SendStatus:
        """Cancel the campaign's job: every message not yet handed to the provider becomes
        `cancelled` (never sent, not counted as delivered nor in CTR). Messages the provider
        has are left to finish. Raises `Conflict` when there is no job or it has finished."""
        job = self._job(campaign)
        if job.state in (CANCELLED, DONE):
            raise Conflict(
                f"campaign {campaign.slug!r} cannot be cancelled: its send is {job.state}",
                field="campaign",
            )
        self.jobs.cancel(campaign.id, self.clock())
        self.store.set_campaign_status(campaign.id, "cancelled")
        return self.status(campaign)

    def release(self, campaign: Campaign, *, resend: bool) -> int:
        """Decide about the campaign's `unknown` messages (handed to a provider that cannot say
        whether it took them): `resend` queues them again (a recipient may get two copies), else
        they are taken as sent (a receipt may still say otherwise). Return how many.

        A held job goes back to running when messages are queued again. Raises `Conflict`
        when there is no job.
        """
        job = self._job(campaign)
        now = self.clock()
        n = self.jobs.release_unknown(campaign.id, resend, now)
        if job.state == HELD:
            if resend and n:
                self.jobs.set_state(campaign.id, RUNNING, now, expect=(HELD,))
            else:
                self.jobs.set_state(campaign.id, DONE, now, expect=(HELD,))
                self.store.set_campaign_status(campaign.id, "sent", now)
        return n

    def status(self, campaign: Campaign) -> SendStatus:
        """Return the job's state and counts ("not_started" without a job)."""
        job = self.jobs.get(campaign.id)
        now = self.clock()
        if job is None:
            return SendStatus(
                campaign.public_id, campaign.slug, "not_started", None, None, None, 0,
                JobCounts(), False, None, None, None, None,
            )  # fmt: skip
        counts = self.jobs.counts(campaign.id, now)
        counts.skipped_opted_out += job.skipped_opted_out
        counts.skipped_invalid += job.skipped_invalid
        live = (
            job.lease_owner is not None
            and (job.lease_until_us or 0) > now
            and not holder_is_dead(job.lease_owner)
        )
        return SendStatus(
            campaign.public_id, campaign.slug, job.state, job.provider, job.rate,
            job.quiet_hours, job.wrapped, counts, live, job.lease_owner if live else None,
            job.last_error, job.created_us, job.finished_us,
        )  # fmt: skip

    def job_state(self, campaign_id: int) -> str | None:
        """Return the state of the campaign's job (None without one)."""
        job = self.jobs.get(campaign_id)
        return None if job is None else job.state

    def _job(self, campaign: Campaign) -> SendJob:
        job = self.jobs.get(campaign.id)
        if job is None:
            raise Conflict(
                f"campaign {campaign.slug!r} has not been sent: nothing to control",
                field="campaign",
            )
        return job

    def _transition(
        self, campaign: Campaign, state: str, *, expect: Sequence[str], verb: str
    ) -> None:
        job = self._job(campaign)
        if not self.jobs.set_state(campaign.id, state, self.clock(), expect=expect):
            raise Conflict(
                f"campaign {campaign.slug!r} cannot {verb}: its send is {job.state}",
                field="campaign",
            )

    # -- test sends ----------------------------------------------------------------------------

    def test_send(
        self,
        workspace: Workspace,
        campaign: Campaign,
        provider: SmsProvider,
        *,
        to: str,
        contact_ref: str | None = None,
        region: str | None = None,
    ) -> TestSendResult:
        """Send the campaign once to `to`, personalized for a contact (`contact_ref`, else the
        contact with that phone, else the first of the audience), with real tracked links.

        The message is marked as a test: kept out of reports, exports and CTR. Raises
        `InvalidInput` for a bad phone; `NotFound` for an unknown contact or an empty audience.
        """
        from clicktrail.services.contacts import normalize_phone

        _check_sendable(campaign)
        try:
            phone = normalize_phone(to, region)
        except ValueError as exc:
            raise InvalidInput(f"recipient to test: {exc}", field="to") from None
        contact: Contact | None
        if contact_ref:
            contact = self.store.find_contact(workspace.id, contact_ref)
            if contact is None:
                raise NotFound(f"contact {contact_ref!r} not found", field="contact")
        else:
            contact = self.store.find_contact(workspace.id, phone)
            if contact is None:
                found = self.store.audience(workspace.id, campaign.list_id, 0, 1)
                contact = found[0] if found else None
        if contact is None:
            raise NotFound(
                "a test message is personalized for a contact: import contacts first "
                "(or name the contact to personalize it for)",
                field="contact",
            )
        template = parse_template(campaign.template)
        domain = self.store.get_domain(campaign.domain_id)
        now = self.clock()
        for attempt in range(TOKEN_RETRIES):
            w = wrap_for_contact(template, campaign, domain, contact)
            msg = NewMessage(
                new_public_id("msg"), campaign.id, contact.id, phone, w.body, w.encoding,
                w.segments, now, w.tokens,
            )  # fmt: skip
            try:
                mid = self.jobs.insert_test_message(msg)
                break
            except Conflict:
                if attempt == TOKEN_RETRIES - 1:
                    raise
        self.jobs.claim_test(mid, now)
        sms = OutgoingSms(msg.public_id, phone, msg.body, msg.encoding, msg.segments)
        try:
            results = provider.send([sms])
        except Exception as exc:
            results = []
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = "the provider gave no answer for the message"
        res = results[0] if results else None
        if res is None:
            out = Outcome(msg.public_id, Status.UNKNOWN, None, "in_doubt", error)
        elif res.status == Status.SENT:
            out = Outcome(msg.public_id, Status.SENT, res.provider_message_id)
        else:
            # A test is not retried: a refusal for now is reported as it is.
            out = Outcome(
                msg.public_id, Status.FAILED, res.provider_message_id,
                res.error_code or ("retry_later" if res.status == Status.QUEUED else None),
                res.error_message
                or ("the provider refused for now; try again" if res.status == Status.QUEUED else None),
            )  # fmt: skip
        self.jobs.record(provider.name, [out], self.clock())
        return TestSendResult(
            msg.public_id, phone, msg.body, out.status.value, out.error_code, out.error_message,
            [domain.base_url + tok for tok, _, _ in msg.tokens],
        )  # fmt: skip

    # -- the background worker's entry -----------------------------------------------------------

    def run_job(self, campaign_id: int, should_stop: Callable[[], bool]) -> None:
        """Run one job for the worker: look its campaign up and `run` it, leaving it running
        for the next process when `should_stop` turns true."""
        found = self.jobs.campaign_of(campaign_id)
        if found is None:
            return
        workspace, campaign = found
        try:
            self.run(workspace, campaign, should_stop=should_stop, stop_pauses=False)
        except Conflict:
            return  # another process took it, or it stopped being runnable meanwhile

    def runnable(self) -> list[int]:
        """Return the campaigns whose job is running and held by no live process."""
        now = self.clock()
        out = []
        for cid, _ws, owner, until in self.jobs.runnable(now):
            if owner is None or (until or 0) <= now or holder_is_dead(owner):
                out.append(cid)
        return out


def _check_sendable(campaign: Campaign) -> None:
    if campaign.status == "external":
        raise Conflict(
            f"campaign {campaign.slug!r} is wrap-only: its messages go out through your own "
            "sender, never through clicktrail",
            field="campaign",
        )


def _check_startable(campaign: Campaign, job: SendJob) -> None:
    _check_sendable(campaign)
    if job.state == CANCELLED:
        raise Conflict(f"campaign {campaign.slug!r} was cancelled", field="campaign")
    if job.state == DONE or campaign.status == "sent":
        raise Conflict(f"campaign {campaign.slug!r} has already been sent", field="campaign")
    if job.state == PAUSED:
        raise Conflict(
            f"campaign {campaign.slug!r} is paused: `clicktrail campaign resume {campaign.slug}`",
            field="campaign",
        )


# -- the loop -----------------------------------------------------------------------------------


class _Stop(Exception):
    """The job stopped being runnable (paused, cancelled, lease lost, asked to stop)."""


def _execute(run: _Run) -> None:
    try:
        _wrap(run)
        _recover(run)
        _send_loop(run)
    except _Stop:
        return
    _finish(run)


def _poll(run: _Run) -> None:
    """Read the job's state and renew the lease; raise `_Stop` when it must not go on."""
    now = run.clock()
    if run.should_stop():
        if run.stop_pauses:
            run.jobs.set_state(run.campaign.id, PAUSED, now, expect=(RUNNING,))
            run.summary.state = PAUSED
        else:
            run.summary.state = RUNNING
        raise _Stop
    until = now + int(run.defaults.lease_s * 1e6)
    if not run.jobs.renew(run.campaign.id, run.owner, until):
        log.warning("campaign %s: lease lost; another process continues", run.campaign.slug)
        run.summary.state = RUNNING
        raise _Stop
    job = run.jobs.get(run.campaign.id)
    assert job is not None
    run.job = job
    if job.state not in (RUNNING, HELD):
        if job.state == CANCELLED:
            # A retry recorded after the cancel put its message back in the queue: sweep again.
            run.jobs.cancel(run.campaign.id, now)
        run.summary.state = job.state
        raise _Stop


def _wrap(run: _Run) -> None:
    """Wrap the audience after the job's `wrapped_through` contact, a committed batch at a
    time; opted-out contacts and invalid numbers are counted, not wrapped."""
    campaign, store = run.campaign, run.store
    template = parse_template(campaign.template)
    domain = store.get_domain(campaign.domain_id)
    after = run.job.wrapped_through
    while True:
        _poll(run)
        contacts = run.jobs.audience(run.workspace.id, campaign.list_id, after, run.wrap_batch)
        if not contacts:
            return
        after = contacts[-1].id
        opted_out = sum(1 for c in contacts if c.opted_out)
        valid = [c for c in contacts if not c.opted_out and is_valid_phone(c.phone)]
        invalid = len(contacts) - opted_out - len(valid)
        for attempt in range(TOKEN_RETRIES):
            now = run.clock()
            batch = []
            for c in valid:
                w = wrap_for_contact(template, campaign, domain, c)
                batch.append(
                    NewMessage(
                        new_public_id("msg"), campaign.id, c.id, c.phone, w.body, w.encoding,
                        w.segments, now, w.tokens,
                    )
                )  # fmt: skip
            try:
                run.jobs.insert_wrapped(
                    campaign.id, batch, through=after, skipped_opted_out=opted_out,
                    skipped_invalid=invalid, now_us=now,
                )  # fmt: skip
                break
            except Conflict:
                if attempt == TOKEN_RETRIES - 1:
                    raise
        run.summary.created += len(batch)
        run.summary.skipped_opted_out += opted_out
        run.summary.skipped_invalid += invalid
        if run.progress:
            run.progress("wrapped", len(contacts))


def _recover(run: _Run) -> None:
    """Settle messages a dead sender left `sending` (this process holds the lease, so no live
    sender has them)."""
    in_flight = run.jobs.in_flight(run.campaign.id)
    for i in range(0, len(in_flight), 1000):
        _settle_in_doubt(run, in_flight[i : i + 1000], None)


def _settle_in_doubt(
    run: _Run,
    batch: Sequence[OutgoingSms],
    error: str | None,
    *,
    due: dict[str, DueMessage] | None = None,
) -> None:
    """Record what the provider says it took of `batch`; resend the rest when that is safe,
    else hold it as `unknown` (module docstring).

    With `due` (a provider call that raised or left messages unanswered: their attempts so
    far) a resend waits its backoff and counts against the attempts; without (a dead sender's
    messages) it goes at once."""
    provider = run.provider
    try:
        found = [r for r in provider.reconcile(batch) if r.status != Status.QUEUED]
        complete = bool(getattr(provider, "reconcile_complete", False))
    except Exception as exc:
        log.warning("campaign %s: reconcile failed: %s", run.campaign.slug, exc)
        found, complete = [], False
    now = run.clock()
    known = {m.message_id: m for m in batch}
    outcomes = [
        Outcome(r.message_id, r.status, r.provider_message_id, r.error_code, r.error_message)
        for r in found
        if r.message_id in known
    ]
    _tally(run, [(known[o.message_id], o) for o in outcomes])
    taken = {o.message_id for o in outcomes}
    rest = [m for m in batch if m.message_id not in taken]
    why = error or "the sender stopped while the provider had the message"
    if complete or bool(getattr(provider, "idempotent", False)):
        for m in rest:
            d = due.get(m.message_id) if due is not None else None
            if d is None:
                outcomes.append(Outcome(m.message_id, Status.QUEUED, None, "in_doubt", why, now))
                continue
            attempts = d.attempts + 1  # the claim counted this attempt
            if attempts >= run.job.max_attempts:
                outcomes.append(
                    Outcome(
                        m.message_id, Status.FAILED, None, "retries_exhausted",
                        f"gave up after {attempts} attempt(s): {why}",
                    )
                )  # fmt: skip
                run.summary.failed += 1
                continue
            delay = retry_delay(
                attempts, run.jitter(), base=run.defaults.backoff_s, cap=run.defaults.backoff_cap_s
            )
            run.summary.retried += 1
            outcomes.append(
                Outcome(m.message_id, Status.QUEUED, None, "in_doubt", why, now + int(delay * 1e6))
            )
    else:
        outcomes += [
            Outcome(m.message_id, Status.UNKNOWN, None, "in_doubt", f"{why}; held for an operator")
            for m in rest
        ]
        run.summary.unknown += len(rest)
    run.jobs.record(provider.name, outcomes, now)


def _send_loop(run: _Run) -> None:
    cid = run.campaign.id
    quiet = QuietHours.parse(run.job.quiet_hours) if run.job.quiet_hours else None
    shared = run.buckets(sender_key(run.provider), run.job.rate)
    next_poll = 0.0
    wake_at_us = 0  # nothing is due before this (quiet hours, backoff)
    while True:
        mono = time.monotonic()
        if mono >= next_poll:
            _poll(run)
            next_poll = mono + POLL_S
        now = run.clock()
        if now < wake_at_us:
            run.sleep(min((wake_at_us - now) / 1e6, POLL_S))
            continue
        with shared.lock:
            wait = shared.bucket.wait(now / 1e6)
            got = 0 if wait > 0 else shared.bucket.take(run.batch_size, now / 1e6)
        if not got:
            run.sleep(min(max(wait, 0.001), POLL_S))
            continue
        due = run.jobs.due(cid, now, got)
        if not due:
            with shared.lock:
                shared.bucket.give_back(got)
            nxt = run.jobs.next_due(cid)
            if nxt is None:
                return  # nothing queued: done (or held)
            wake_at_us = max(nxt, now + 1000)
            continue
        send_ids, sms_by_id = _decide(run, due, quiet, now)
        claimed = run.jobs.claim(cid, send_ids, now) if send_ids else set()
        with shared.lock:
            shared.bucket.give_back(got - len(claimed))
        if not claimed:
            next_poll = 0.0  # the job may have been paused or cancelled meanwhile
            continue
        batch = [sms_by_id[i] for i in send_ids if i in claimed]
        attempts = {sms_by_id[d.id].message_id: d for d in due if d.id in claimed}
        try:
            results = run.provider.send(batch)
        except Exception as exc:
            log.warning(
                "campaign %s: provider %s raised: %s", run.campaign.slug, run.provider.name, exc
            )
            _settle_in_doubt(run, batch, f"{type(exc).__name__}: {exc}", due=attempts)
            continue
        _record_results(run, batch, results, attempts, shared)
        if run.progress:
            run.progress("sent", len(batch))


def _decide(
    run: _Run, due: Sequence[DueMessage], quiet: QuietHours | None, now: int
) -> tuple[list[int], dict[int, OutgoingSms]]:
    """Split due messages: skip (opted out since wrapping), fail (too old), defer (quiet
    hours), send. Writes the first three; returns the ids to send."""
    send: list[int] = []
    deferred: list[tuple[int, int]] = []
    decided: list[Outcome] = []
    at = datetime.fromtimestamp(now / 1e6, UTC)
    max_age_us = run.job.max_age_s * 1_000_000
    for d in due:
        if d.opted_out:
            decided.append(
                Outcome(
                    d.sms.message_id, Status.SKIPPED, None, OPTED_OUT,
                    "the recipient opted out after the message was wrapped",
                )
            )  # fmt: skip
            run.summary.skipped_opted_out += 1
            continue
        if d.first_attempt_us is not None and now - d.first_attempt_us >= max_age_us:
            decided.append(
                Outcome(
                    d.sms.message_id, Status.FAILED, None, "expired",
                    f"not sent within {run.job.max_age_s} s of its first attempt",
                )
            )  # fmt: skip
            run.summary.failed += 1
            continue
        if quiet is not None:
            opens = quiet.next_allowed(at, time_zones(d.sms.to))
            if opens is None:
                decided.append(
                    Outcome(
                        d.sms.message_id, Status.FAILED, None, "quiet_hours",
                        f"no moment is outside quiet hours {quiet} in all of the number's time "
                        "zones at once",
                    )
                )  # fmt: skip
                run.summary.failed += 1
                continue
            if opens > at:
                deferred.append((d.id, int(opens.timestamp() * 1_000_000)))
                run.summary.deferred += 1
                continue
        send.append(d.id)
    if deferred:
        run.jobs.defer(deferred)
    if decided:
        # Only queued messages change: they were never claimed.
        run.jobs.record(run.provider.name, decided, now)
    return send, {d.id: d.sms for d in due}


def _record_results(
    run: _Run,
    batch: Sequence[OutgoingSms],
    results: Sequence[SendResult],
    due: dict[str, DueMessage],
    shared: _SharedBucket,
) -> None:
    """Write the provider's answers: sent, failed for good, or queued again with a backoff
    (failed once out of attempts or time). A message the answer left out is in doubt."""
    now = run.clock()
    by_id = {m.message_id: m for m in batch}
    outcomes: list[tuple[OutgoingSms, Outcome]] = []
    hold = 0.0
    max_age_us = run.job.max_age_s * 1_000_000
    for r in results:
        msg = by_id.get(r.message_id)
        if msg is None:
            continue
        if r.status == Status.QUEUED:
            d = due[r.message_id]
            attempts = d.attempts + 1  # the claim counted this attempt
            first = d.first_attempt_us or now
            reason = r.error_message or r.error_code or "the provider refused for now"
            if attempts >= run.job.max_attempts or now - first >= max_age_us:
                out = Outcome(
                    r.message_id, Status.FAILED, r.provider_message_id,
                    r.error_code or "retries_exhausted",
                    f"gave up after {attempts} attempt(s): {reason}",
                )  # fmt: skip
            else:
                delay = retry_delay(
                    attempts, run.jitter(), base=run.defaults.backoff_s,
                    cap=run.defaults.backoff_cap_s, retry_after=r.retry_after,
                )  # fmt: skip
                out = Outcome(
                    r.message_id, Status.QUEUED, None, r.error_code or "retry_later",
                    reason, now + int(delay * 1e6),
                )  # fmt: skip
                run.summary.retried += 1
            if r.retry_after:
                hold = max(hold, r.retry_after)
        else:
            out = Outcome(
                r.message_id, r.status, r.provider_message_id, r.error_code, r.error_message
            )
        outcomes.append((msg, out))
    answered = {o.message_id for _, o in outcomes}
    run.jobs.record(run.provider.name, [o for _, o in outcomes], now)
    _tally(run, outcomes)
    missing = [m for m in batch if m.message_id not in answered]
    if missing:
        _settle_in_doubt(run, missing, "the provider gave no answer for the message", due=due)
    if hold:
        with shared.lock:
            shared.bucket.hold_until(now / 1e6 + hold)


def _tally(run: _Run, outcomes: Iterable[tuple[OutgoingSms, Outcome]]) -> None:
    s = run.summary
    for msg, out in outcomes:
        if out.status == Status.SENT:
            s.sent += 1
            s.segments += msg.segments
            s.encodings[msg.encoding] = s.encodings.get(msg.encoding, 0) + 1
        elif out.status == Status.FAILED:
            s.failed += 1


def _finish(run: _Run) -> None:
    """Nothing left to send: the job is done, or held while messages are in doubt."""
    now = run.clock()
    counts = run.jobs.counts(run.campaign.id, now)
    if counts.unknown:
        run.jobs.set_state(run.campaign.id, HELD, now, expect=(RUNNING, HELD))
        run.summary.state = HELD
        return
    if run.jobs.set_state(run.campaign.id, DONE, now, expect=(RUNNING, HELD)):
        run.store.set_campaign_status(run.campaign.id, "sent", now)
        run.summary.state = DONE
    else:
        job = run.jobs.get(run.campaign.id)
        run.summary.state = job.state if job else DONE


# -- the background worker ----------------------------------------------------------------------


class SendWorker:
    """Runs sending jobs on threads of the server process: those started through the API and
    any running job whose sender died. `tick` (a periodic server job) looks for them; `stop`
    lets each finish its batch and leaves the job running for the next process."""

    def __init__(self, sending: Sending, max_jobs: int = 8, *, enabled: bool = True) -> None:
        self.sending = sending
        self.max_jobs = max_jobs
        self.enabled = enabled
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def tick(self) -> None:
        """Start a thread for each runnable job not running here yet."""
        if self._stop.is_set():
            return
        for cid in self.sending.runnable():
            self.launch(cid)

    def launch(self, campaign_id: int) -> bool:
        """Run the campaign's job on a thread of this process unless one already does or the
        worker is full or stopping; return True when a thread was started."""
        with self._lock:
            if self._stop.is_set() or not self.enabled:
                return False
            self._threads = {c: t for c, t in self._threads.items() if t.is_alive()}
            if campaign_id in self._threads or len(self._threads) >= self.max_jobs:
                return False
            thread = threading.Thread(
                target=self._run, args=(campaign_id,), name=f"clicktrail-send-{campaign_id}",
                daemon=True,
            )  # fmt: skip
            self._threads[campaign_id] = thread
            thread.start()
            return True

    def _run(self, campaign_id: int) -> None:
        try:
            self.sending.run_job(campaign_id, self._stop.is_set)
        except Exception:
            log.exception("sending job of campaign %s failed", campaign_id)
            try:
                self.sending.jobs.set_state(
                    campaign_id, PAUSED, self.sending.clock(), expect=(RUNNING,),
                    last_error="the sender failed; see the server log, then resume",
                )  # fmt: skip
            except Exception:
                log.exception("could not pause the job of campaign %s", campaign_id)

    def busy(self) -> list[int]:
        """Return the campaigns whose job runs on a thread here."""
        with self._lock:
            return [c for c, t in self._threads.items() if t.is_alive()]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every job thread to stop after its batch and wait for them (up to `timeout`)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


# -- the old entry point ------------------------------------------------------------------------


def send_campaign(
    store: Store,
    jobs: SendJobStore,
    workspace: Workspace,
    campaign: Campaign,
    provider: SmsProvider,
    *,
    clock: Callable[[], int],
    progress: Callable[[str, int], None] | None = None,
    batch_size: int | None = None,
    defaults: SendDefaults | None = None,
    spec: JobSpec | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendSummary:
    """Open and run the campaign's job in this thread through `provider` (see `Sending.send`);
    `batch_size` is both the contacts wrapped per commit and the messages per provider call."""
    sending = Sending(
        store, jobs, lambda _ws, _name: provider, defaults=defaults, clock=clock, sleep=sleep
    )
    return sending.send(
        workspace, campaign, provider, spec=spec, progress=progress, batch_size=batch_size,
        wrap_batch=batch_size or WRAP_BATCH,
    )  # fmt: skip
