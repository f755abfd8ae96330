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

The package: `records` (job records, states and the `SendJobStore` port), `recipients` (valid
numbers, time zones), `leases` (process leases), `loop` (one run of a job), `workers` (jobs on
threads of the server) and, here, the `Sending` facade the CLI, the API and the composition root
use, and `send_campaign` for a campaign sent in this thread at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.segments import SegmentQuery
from clicktrail.domain.sending import QuietHours
from clicktrail.domain.template import parse_template
from clicktrail.domain.wrapping import TOKEN_RETRIES, wrap_for_contact
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.holdouts import HoldoutStore
from clicktrail.services.ports import NewMessage, OutgoingSms, SmsProvider
from clicktrail.services.sending.leases import holder_is_dead, new_owner
from clicktrail.services.sending.loop import Run, SharedBucket, execute
from clicktrail.services.sending.records import (
    CANCELLED,
    DONE,
    HELD,
    INVALID_NUMBER,
    JOB_STATES,
    OPTED_OUT,
    PAUSED,
    RUNNING,
    WRAP_BATCH,
    DueMessage,
    JobCounts,
    JobSpec,
    Outcome,
    SendDefaults,
    SendingReposWithJobs,
    SendJob,
    SendJobStore,
    SendStatus,
    SendSummary,
    TestSendResult,
    check_sendable,
    check_startable,
)
from clicktrail.services.sending.single import dispatch
from clicktrail.services.sending.workers import SendWorker

__all__ = [
    "CANCELLED",
    "DONE",
    "HELD",
    "INVALID_NUMBER",
    "JOB_STATES",
    "OPTED_OUT",
    "PAUSED",
    "RUNNING",
    "WRAP_BATCH",
    "DueMessage",
    "JobCounts",
    "JobSpec",
    "Outcome",
    "SendDefaults",
    "SendJob",
    "SendJobStore",
    "SendStatus",
    "SendSummary",
    "SendWorker",
    "Sending",
    "SendingReposWithJobs",
    "TestSendResult",
    "send_campaign",
]


class Sending:
    """The sending use cases over their repositories (`CampaignRepos`), the job storage and a
    provider factory.

    `provider_for(workspace, spec)` returns the provider a job names (``outbox`` or
    ``outbox:PATH``; other names as the composition root knows them). Without `background`,
    this process never runs jobs on threads (`start_in_background` only records the job: a
    `clicktrail campaign send` runs it). `holdouts` draws campaigns' holdouts and tells the
    send whom to skip; a campaign with a holdout refuses to send without it.
    """

    def __init__(
        self,
        repos: CampaignRepos,
        jobs: SendJobStore,
        provider_for: Callable[[Workspace, str], SmsProvider],
        *,
        defaults: SendDefaults | None = None,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        background: bool = True,
        holdouts: HoldoutStore | None = None,
        audiences: Callable[[Campaign, int], SegmentQuery | None] | None = None,
    ) -> None:
        from clicktrail.services.clock import now_us

        self.holdouts = holdouts
        self.audiences = audiences
        self.repos = repos
        self.jobs = jobs
        self.provider_for = provider_for
        self.defaults = defaults or SendDefaults()
        self.clock = clock or now_us
        self.sleep = sleep
        self.jitter = jitter
        self.worker = SendWorker(self, enabled=background)
        self._buckets: dict[tuple[str, float], SharedBucket] = {}
        self._buckets_lock = threading.Lock()

    def bucket_for(self, key: str, rate: float) -> SharedBucket:
        """Return the rate limiter of sender `key` at `rate` (shared by this process's jobs)."""
        with self._buckets_lock:
            found = self._buckets.get((key, rate))
            if found is None:
                found = self._buckets[(key, rate)] = SharedBucket(rate, self.clock() / 1e6)
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
        check_sendable(campaign)
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
            self.repos.campaigns.set_campaign_status(campaign.id, "sending")
            return job
        check_startable(campaign, job)
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
        check_startable(campaign, job)
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
        if campaign.segment_id is not None and self.audiences is None:
            raise InvalidInput(
                f"campaign {campaign.slug!r} sends to a segment: this sender cannot read "
                "segments", field="segment",
            )  # fmt: skip
        segment = None if self.audiences is None else self.audiences(campaign, now)
        run = Run(
            repos=self.repos,
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
            holdouts=self.holdouts,
            segment=segment,
        )
        try:
            execute(run)
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
        self.repos.campaigns.set_campaign_status(campaign.id, "cancelled")
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
                self.repos.campaigns.set_campaign_status(campaign.id, "sent", now)
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
        drawn = None if self.holdouts is None else self.holdouts.holdout_draw(campaign.id)
        counts.held_out = drawn.held if drawn is not None else 0
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

        check_sendable(campaign)
        try:
            phone = normalize_phone(to, region)
        except ValueError as exc:
            raise InvalidInput(f"recipient to test: {exc}", field="to") from None
        contact: Contact | None
        if contact_ref:
            contact = self.repos.contacts.find_contact(workspace.id, contact_ref)
            if contact is None:
                raise NotFound(f"contact {contact_ref!r} not found", field="contact")
        else:
            contact = self.repos.contacts.find_contact(workspace.id, phone)
            if contact is None:
                found = self.repos.contacts.audience(workspace.id, campaign.list_id, 0, 1)
                contact = found[0] if found else None
        if contact is None:
            raise NotFound(
                "a test message is personalized for a contact: import contacts first "
                "(or name the contact to personalize it for)",
                field="contact",
            )
        template = parse_template(campaign.template)
        domain = self.repos.workspaces.get_domain(campaign.domain_id)
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
        sms = OutgoingSms(msg.public_id, phone, msg.body, msg.encoding, msg.segments)
        out = dispatch(self.jobs, provider, mid, sms, self.clock)
        assert out is not None  # just stored queued, by this call
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


def send_campaign(
    repos: SendingReposWithJobs,
    workspace: Workspace,
    campaign: Campaign,
    provider: SmsProvider,
    *,
    clock: Callable[[], int],
    progress: Callable[[str, int], None] | None = None,
    batch_size: int | None = None,
    holdouts: HoldoutStore | None = None,
    audiences: Callable[[Campaign, int], SegmentQuery | None] | None = None,
) -> SendSummary:
    """Wrap the campaign for every opted-in contact of its audience and send it, in this
    thread, as a sending job through `provider` (the job's rate is the provider's default;
    `batch_size` is both the contacts wrapped per commit and the messages per provider call).

    Resumable: a run after a crash goes on where the last one stopped, and messages the dead
    run had handed over are settled with the provider first, so nobody gets one twice. The
    campaign becomes `sent` when no message is left to send. Raises `Conflict` if the campaign
    has already been sent, was cancelled, is paused or is being sent by another process.
    """
    sending = Sending(
        repos, repos.send_jobs, lambda _ws, _name: provider, clock=clock, holdouts=holdouts,
        audiences=audiences,
    )  # fmt: skip
    return sending.send(
        workspace, campaign, provider, progress=progress, batch_size=batch_size,
        wrap_batch=batch_size or WRAP_BATCH,
    )  # fmt: skip
