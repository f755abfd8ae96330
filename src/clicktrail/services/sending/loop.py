"""The run loop of a sending job: wrap the audience, recover what a dead sender left in doubt,
then send at the job's rate until nothing is left (the steps and the in-doubt rule:
`clicktrail.services.sending`). One `Run` is one process's run of one job, holding its lease."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from clicktrail.domain.errors import Conflict
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import LINK_MACROS, Campaign, Workspace
from clicktrail.domain.segments import SegmentQuery
from clicktrail.domain.sending import QuietHours, TokenBucket, retry_delay
from clicktrail.domain.status import Status
from clicktrail.domain.template import STANDARD_FIELDS, parse_template
from clicktrail.domain.wrapping import TOKEN_RETRIES, wrap_for_contact
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.holdouts import HoldoutStore, assign_holdout
from clicktrail.services.ports import NewMessage, OutgoingSms, SendResult, SmsProvider
from clicktrail.services.sending.recipients import (
    PHONE_RULES,
    is_valid_phone,
    sendable,
    time_zones,
)
from clicktrail.services.sending.records import (
    CANCELLED,
    DONE,
    HELD,
    OPTED_OUT,
    PAUSED,
    RUNNING,
    DueMessage,
    Outcome,
    SendDefaults,
    SendJob,
    SendJobStore,
    SendSummary,
)
from clicktrail.services.variants import Assignment, check_variant_templates

log = logging.getLogger("clicktrail.sending")

# Seconds between reads of the job's state (pause, cancel) and lease renewals while sending.
POLL_S = 1.0


# -- the rate limiter ---------------------------------------------------------------------------


def sender_key(provider: SmsProvider) -> str:
    """Return what the rate applies to: the provider's sender (number or messaging service,
    its `sender_key` attribute) or, without one, the provider's name."""
    return str(getattr(provider, "sender_key", None) or provider.name)


class SharedBucket:
    """A token bucket shared by the jobs of one `Sending` (one process) that send through the
    same sender at the same rate. Times are the service clock's, in seconds."""

    def __init__(self, rate: float, now: float) -> None:
        self.lock = threading.Lock()
        self.bucket = TokenBucket(rate, now=now)


@dataclass
class Run:
    """One run of a job by this process."""

    repos: CampaignRepos
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
    buckets: Callable[[str, float], SharedBucket]
    holdouts: HoldoutStore | None = None
    # The campaign's segment audience at the run's start (None: its list or the workspace).
    segment: SegmentQuery | None = None


# -- the loop -----------------------------------------------------------------------------------


class _Stop(Exception):
    """The job stopped being runnable (paused, cancelled, lease lost, asked to stop)."""


def execute(run: Run) -> None:
    """Run the job's steps until nothing is left to send (then finish it: done or held) or it
    must stop (paused, cancelled, lease lost, asked to stop: left as the stop decided)."""
    try:
        _wrap(run)
        _recover(run)
        _send_loop(run)
    except _Stop:
        return
    _finish(run)


def _poll(run: Run) -> None:
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


def _draw_holdout(run: Run) -> bool:
    """Draw the campaign's holdout before its first message (services/holdouts.py); return
    whether it holds anyone out. Raises `Conflict` when the campaign has a holdout but this
    sender was given no holdout storage: it must not send to the holdout."""
    if run.campaign.options.holdout is None:
        return False
    if run.holdouts is None:
        raise Conflict(
            f"campaign {run.campaign.slug!r} has a holdout and this sender cannot read it: "
            "nothing was sent",
            field="campaign",
        )
    drawn = assign_holdout(
        run.holdouts, run.campaign, is_valid_phone=is_valid_phone, phone_rules=PHONE_RULES,
        now_us=run.clock(),
    )  # fmt: skip
    return drawn is not None and drawn.held > 0


def _wrap(run: Run) -> None:
    """Wrap the audience after the job's `wrapped_through` contact, a committed batch at a
    time; held-out contacts (the campaign's holdout: they get nothing) are left out, opted-out
    contacts and invalid numbers are counted, not wrapped."""
    campaign, repos = run.campaign, run.repos
    template = parse_template(campaign.template)
    domain = repos.workspaces.get_domain(campaign.domain_id)
    after = run.job.wrapped_through
    holding_out = _draw_holdout(run)
    variants = _variant_assignment(run, holding_out)
    while True:
        _poll(run)
        contacts = run.jobs.audience(
            run.workspace.id, campaign.list_id, after, run.wrap_batch, segment=run.segment
        )
        if not contacts:
            return
        through, seen = contacts[-1].id, len(contacts)
        if holding_out:
            assert run.holdouts is not None
            held = run.holdouts.held_between(campaign.id, after, through)
            run.summary.held_out += len(held)
            contacts = [c for c in contacts if c.id not in held]
        after = through
        opted_out = sum(1 for c in contacts if c.opted_out)
        valid, checked = sendable([c for c in contacts if not c.opted_out])
        invalid = len(contacts) - opted_out - len(valid)
        for attempt in range(TOKEN_RETRIES):
            now = run.clock()
            batch = []
            for c in valid:
                name, tpl = (None, template) if variants is None else variants.of(c)
                w = wrap_for_contact(tpl, campaign, domain, c, variant=name)
                batch.append(
                    NewMessage(
                        new_public_id("msg"), campaign.id, c.id, c.phone, w.body, w.encoding,
                        w.segments, now, w.tokens, name,
                    )
                )  # fmt: skip
            try:
                run.jobs.insert_wrapped(
                    campaign.id, batch, through=after, skipped_opted_out=opted_out,
                    skipped_invalid=invalid, now_us=now, phones_checked=checked,
                    phone_rules=PHONE_RULES,
                )  # fmt: skip
                break
            except Conflict:
                if attempt == TOKEN_RETRIES - 1:
                    raise
        run.summary.created += len(batch)
        run.summary.skipped_opted_out += opted_out
        run.summary.skipped_invalid += invalid
        if run.progress:
            run.progress("wrapped", seen)


def _variant_assignment(run: Run, holding_out: bool) -> Assignment | None:
    """The campaign's variant draw over its whole sendable audience (not held out, not opted
    out, a valid number), read in contact id order; None for a campaign without variants. A
    resumed send draws again over the audience as it is then: the same seed and recipients
    give the same assignment (messages already wrapped keep theirs)."""
    spec = run.campaign.options.variants
    if spec is None:
        return None
    fields = (
        set(STANDARD_FIELDS)
        | set(LINK_MACROS)
        | run.repos.contacts.attribute_names(run.workspace.id)
    )
    templates = check_variant_templates(spec, fields)
    ids: list[int] = []
    after = 0
    while contacts := run.jobs.audience(
        run.workspace.id, run.campaign.list_id, after, run.wrap_batch, segment=run.segment
    ):
        through = contacts[-1].id
        if holding_out:
            assert run.holdouts is not None
            held = run.holdouts.held_between(run.campaign.id, after, through)
            contacts = [c for c in contacts if c.id not in held]
        ids.extend(c.id for c in sendable([c for c in contacts if not c.opted_out])[0])
        after = through
    return Assignment(spec, templates, ids)


def _recover(run: Run) -> None:
    """Settle messages a dead sender left `sending` (this process holds the lease, so no live
    sender has them)."""
    in_flight = run.jobs.in_flight(run.campaign.id)
    for i in range(0, len(in_flight), 1000):
        _settle_in_doubt(run, in_flight[i : i + 1000], None)


def _settle_in_doubt(
    run: Run,
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


def _send_loop(run: Run) -> None:
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
    run: Run, due: Sequence[DueMessage], quiet: QuietHours | None, now: int
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
    run: Run,
    batch: Sequence[OutgoingSms],
    results: Sequence[SendResult],
    due: dict[str, DueMessage],
    shared: SharedBucket,
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


def _tally(run: Run, outcomes: Iterable[tuple[OutgoingSms, Outcome]]) -> None:
    s = run.summary
    for msg, out in outcomes:
        if out.status == Status.SENT:
            s.sent += 1
            s.segments += msg.segments
            s.encodings[msg.encoding] = s.encodings.get(msg.encoding, 0) + 1
        elif out.status == Status.FAILED:
            s.failed += 1


def _finish(run: Run) -> None:
    """Nothing left to send: the job is done, or held while messages are in doubt."""
    now = run.clock()
    counts = run.jobs.counts(run.campaign.id, now)
    if counts.unknown:
        run.jobs.set_state(run.campaign.id, HELD, now, expect=(RUNNING, HELD))
        run.summary.state = HELD
        return
    if run.jobs.set_state(run.campaign.id, DONE, now, expect=(RUNNING, HELD)):
        run.repos.campaigns.set_campaign_status(run.campaign.id, "sent", now)
        run.summary.state = DONE
    else:
        job = run.jobs.get(run.campaign.id)
        run.summary.state = job.state if job else DONE
