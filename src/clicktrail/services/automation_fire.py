"""Carrying out due automation runs (docs/automations.md, "Runs"): the jobs process's
`RunFirer.tick`.

1. **Claim.** Due pending runs are claimed in a batch under a lease (`claimed_by`,
   `claim_until_us`, attempts + 1), committed first. PostgreSQL skips rows another worker has
   locked; SQLite has one writer. A worker killed mid-run leaves its runs to be claimed again
   when the lease ends.
2. **Decide.** The contact's situation is read from storage (the rule enabled, opted out,
   segment membership through services/segments.py, this contact's automated sends of the last
   week for the frequency cap, the time zones of their number as campaigns compute them, a
   counted click or a conversion since the trigger, the triggering click now a bot's) and
   `domain.automations.decide` says fire, cancel, skip or wait (the run stays pending, due when
   quiet hours end).
3. **Fire.** The run's state change (pending and still ours → fired), the action's effect and an
   `automation.fired` event are one transaction, so a run fires at most once:
   * ``send``: a one-contact message of the campaign (`services.sending.single.compose_one`)
     stored queued with its own tokens; after the commit it is sent through the provider of
     the campaign's send job (`dispatch`). A worker killed between the two leaves the message
     queued: the next tick sends it (`undispatched`); one killed while the provider has it
     leaves it `sending` (in doubt), never sent twice.
   * ``webhook``: the run's `automation.fired` event gets a delivery to that endpoint (whatever
     it subscribes to; the webhook worker signs, sends and retries it). Endpoints subscribed
     to `automation.fired` get every run's event as usual, once.
   * ``add_to_segment`` / ``remove_from_segment``: the contact's membership of the static list.
   A run that cannot be carried out (its campaign has no provider, the endpoint or segment is
   gone, the contact is unknown) fails with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clicktrail.domain import automations as au
from clicktrail.domain.automations import Rule, Situation
from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.domain.models import Contact, Workspace
from clicktrail.services import segments
from clicktrail.services.automation_runs import CANCELLED, FAILED, SKIPPED, RunScheduler, RunStore
from clicktrail.services.automations import AutomationRepos
from clicktrail.services.ports import OutgoingSms, SmsProvider
from clicktrail.services.sending.leases import new_owner
from clicktrail.services.sending.recipients import time_zones
from clicktrail.services.sending.records import SendJobStore
from clicktrail.services.sending.single import OneMessage, compose_one, dispatch
from clicktrail.services.workspaces import WorkspaceStore

log = logging.getLogger("clicktrail.automations")

CLAIM_BATCH = 100
LEASE_US = 120_000_000  # a run's lease: far past one decision and one provider call
TOKEN_RETRIES = 5


@dataclass(frozen=True, slots=True)
class DueRun:
    """A claimed run with its rule."""

    id: int
    public_id: str
    workspace: str  # public id
    workspace_id: int
    automation_id: int
    automation: str  # public id
    name: str
    enabled: bool
    rule: Rule
    phone: str
    campaign: str | None  # the trigger event's
    trigger_key: str
    trigger_us: int
    due_us: int


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What storage knows of a run's contact (the rest of `Situation` comes from services)."""

    contact: Contact | None
    recent_us: Sequence[int]
    clicked: bool
    converted: bool
    trigger_bot: bool


@dataclass(frozen=True, slots=True)
class SendEffect:
    """Store `message` queued (its links made in the campaign as needed)."""

    message: OneMessage


@dataclass(frozen=True, slots=True)
class WebhookEffect:
    """Deliver the run's event to endpoint `endpoint_id`."""

    endpoint_id: int


@dataclass(frozen=True, slots=True)
class SegmentEffect:
    """Add the contact to (or remove it from) static segment `segment_id`."""

    segment_id: int
    contact_id: int
    add: bool


Effect = SendEffect | WebhookEffect | SegmentEffect


@dataclass(frozen=True, slots=True)
class Undispatched:
    """A fired run's message still queued (its sender died before sending it)."""

    message_id: int
    workspace: str  # public id
    campaign_id: int
    sms: OutgoingSms


class FireStore(Protocol):
    """What carrying out runs needs of storage (`storage.automation_fire.FireQueries`)."""

    def claim(self, owner: str, now_us: int, lease_until_us: int, limit: int) -> list[DueRun]:
        """Claim up to `limit` due pending runs (earliest due first) under the lease."""
        ...

    def contact_facts(self, run: DueRun, now_us: int) -> ContactFacts:
        """The run's contact, its automated sends of the last week, a counted click on the
        trigger's campaign (link) or a conversion since the trigger, the trigger click a bot's."""
        ...

    def finish(
        self, run: DueRun, owner: str, state: str, reason: str | None, now_us: int,
        due_us: int | None = None,
    ) -> bool:  # fmt: skip
        """End a run we hold: `state` with `reason` (pending with `due_us`: wait); False when
        it is not ours any more."""
        ...

    def fire(
        self, run: DueRun, owner: str, effect: Effect, event: dict[str, Any], now_us: int
    ) -> int | None:
        """Mark the run fired, apply `effect` and write its `automation.fired` event (`event`
        its data) in one transaction; return the stored message's id for a send (0
        otherwise), None when the run is not ours any more. `Conflict` on a token collision
        (nothing written)."""
        ...

    def undispatched(self, limit: int, now_us: int) -> list[Undispatched]:
        """Queued messages of runs fired lately (oldest first)."""
        ...


class FireRepos(AutomationRepos, Protocol):
    """The stores a due run reads (a `bootstrap.Container`)."""

    @property
    def send_jobs(self) -> SendJobStore:
        """Sending jobs (a campaign's provider) and one message's send state."""
        ...

    @property
    def workspaces(self) -> WorkspaceStore:
        """Workspaces (a run names its own) and their domains."""
        ...


@dataclass
class RunFirer:
    """Claims due runs, decides and fires them (module docstring)."""

    repos: FireRepos
    store: FireStore
    provider_for: Callable[[Workspace, str], SmsProvider]
    clock: Callable[[], int]
    owner: str = ""
    batch: int = CLAIM_BATCH

    def __post_init__(self) -> None:
        self.owner = self.owner or new_owner()

    def tick(self) -> int:
        """Send messages left queued, then claim and carry out due runs until none is due;
        return how many runs were handled."""
        self.send_undispatched()
        done = 0
        while True:
            now = self.clock()
            claimed = self.store.claim(self.owner, now, now + LEASE_US, self.batch)
            for run in claimed:
                try:
                    self.carry_out(run)
                except Exception:  # one run's failure never stops the others
                    log.exception("automation run %s failed", run.public_id)
            done += len(claimed)
            if len(claimed) < self.batch:
                return done

    def carry_out(self, run: DueRun) -> None:
        """Decide `run` and act on it."""
        now = self.clock()
        workspace = self.repos.workspaces.find_workspace(run.workspace)
        assert workspace is not None
        facts = self.store.contact_facts(run, now)
        c = facts.contact
        in_segment = None
        if run.rule.conditions.segment is not None and c is not None:
            in_segment = _member(self.repos, workspace, run.rule.conditions.segment, c, now)
        situation = Situation(
            enabled=run.enabled, opted_out=c is not None and c.opted_out,
            in_segment=in_segment, recent_us=facts.recent_us, zones=time_zones(run.phone),
            clicked=facts.clicked, converted=facts.converted, trigger_bot=facts.trigger_bot,
        )  # fmt: skip
        d = au.decide(run.rule, situation, now)
        if d.verdict == "wait":
            self.store.finish(run, self.owner, "pending", d.reason, now, due_us=d.at_us)
            return
        if d.verdict in ("cancel", "skip"):
            state = CANCELLED if d.verdict == "cancel" else SKIPPED
            self.store.finish(run, self.owner, state, d.reason, now)
            return
        if c is None:
            self.store.finish(run, self.owner, FAILED, f"no contact {run.phone} here", now)
            return
        try:
            self._fire(workspace, run, c, now)
        except (NotFound, InvalidInput, Conflict) as e:
            self.store.finish(run, self.owner, FAILED, e.message[:300], self.clock())

    def _fire(self, workspace: Workspace, run: DueRun, contact: Contact, now: int) -> None:
        a = run.rule.action
        event = {
            "automation": run.automation, "name": run.name, "run": run.public_id,
            "action": a.kind, "trigger": {"kind": run.rule.trigger.kind, "key": run.trigger_key,
                                          "campaign": run.campaign},
            "contact": {"phone": contact.phone, "external_id": contact.external_id},
        }  # fmt: skip
        if a.kind == au.SEND:
            self._send(workspace, run, contact, event, now)
            return
        effect: Effect
        if a.kind == au.WEBHOOK:
            assert a.endpoint is not None
            ep = self.repos.webhooks.endpoint(workspace.id, a.endpoint)
            if ep is None:
                raise NotFound(f"webhook endpoint {a.endpoint} not found")
            effect = WebhookEffect(ep.id)
        else:
            assert a.segment is not None
            seg = segments.get_segment(self.repos, workspace, a.segment, now)
            if seg.kind != "static":
                raise InvalidInput(f"segment {a.segment!r} is not a static list")
            effect = SegmentEffect(seg.id, contact.id, a.kind == au.ADD_TO_SEGMENT)
        self.store.fire(run, self.owner, effect, event, now)

    def _send(
        self, workspace: Workspace, run: DueRun, contact: Contact, event: dict[str, Any], now: int
    ) -> None:
        slug = run.rule.send_campaign() or run.campaign
        campaign = self.repos.campaigns.find_campaign(workspace.id, slug) if slug else None
        if campaign is None:
            raise NotFound(f"campaign {slug!r} not found")
        job = self.repos.send_jobs.get(campaign.id)
        if job is None:
            raise NotFound(
                f"campaign {slug!r} was never sent by clicktrail: it has no provider to send with"
            )
        provider = self.provider_for(workspace, job.provider)
        domain = self.repos.workspaces.get_domain(campaign.domain_id)
        assert run.rule.action.template is not None
        for attempt in range(TOKEN_RETRIES):
            msg = compose_one(run.rule.action.template, campaign, domain, contact, now)
            try:
                mid = self.store.fire(
                    run, self.owner, SendEffect(msg), {**event, "message": msg.public_id}, now
                )
                break
            except Conflict:
                if attempt == TOKEN_RETRIES - 1:
                    raise
        if mid:  # committed: now the provider
            dispatch(self.repos.send_jobs, provider, mid, msg.sms, self.clock)

    def send_undispatched(self) -> int:
        """Send fired runs' messages still queued; return how many were tried."""
        left = self.store.undispatched(self.batch, self.clock())
        for u in left:
            workspace = self.repos.workspaces.find_workspace(u.workspace)
            job = self.repos.send_jobs.get(u.campaign_id)
            if workspace is None or job is None:
                continue
            provider = self.provider_for(workspace, job.provider)
            dispatch(self.repos.send_jobs, provider, u.message_id, u.sms, self.clock)
        return len(left)


def _member(repos: FireRepos, workspace: Workspace, slug: str, c: Contact, now: int) -> bool | None:
    """Whether `c` is in segment `slug` now (None: no such segment)."""
    try:
        seg = segments.get_segment(repos, workspace, slug, now)
        query = segments.query_for(repos, seg, now)
    except (NotFound, InvalidInput):
        return None
    found = repos.segments.member_page(query, c.id - 1, 1)
    return bool(found) and found[0].id == c.id


class AutomationWorker:
    """The jobs process's automation work: schedule from the outbox, then fire what is due."""

    def __init__(
        self, repos: FireRepos, runs: RunStore, fires: FireStore,
        provider_for: Callable[[Workspace, str], SmsProvider], clock: Callable[[], int],
    ) -> None:  # fmt: skip
        self.scheduler = RunScheduler(runs, clock)
        self.firer = RunFirer(repos, fires, provider_for, clock)

    def tick(self) -> int:
        """One pass: read the outbox, then carry out due runs; return the runs handled."""
        self.scheduler.tick()
        return self.firer.tick()
