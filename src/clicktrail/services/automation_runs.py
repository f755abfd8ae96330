"""Automation runs: scheduled from the event outbox, cancelled when their condition stops
holding, listed (docs/automations.md, "Runs"). Carrying out due runs: services/automation_fire.py.

**Scheduling** (`RunScheduler.tick`, in the jobs process): read the outbox after the cursor
``automations`` (storage/events.py: commit order, nothing skipped), turn each event into a
`domain.automations.Fact`, and for every enabled rule of its workspace

* `starts` → a pending run due at `due_us`, keyed by `run_key` (rule, contact, trigger event):
  inserted once, ignored when the key exists, so a replayed batch never schedules twice;
* `cancels` → the contact's pending runs of that rule it cancels, with the reason.

A batch's new runs, its cancellations and the cursor's move are one transaction: a crash
before the commit replays the whole batch, after it nothing of it; either way each event's
effect happens exactly once. A run started and cancelled in the same batch is stored
cancelled (its history stays visible).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain import automations as au
from clicktrail.domain.automations import Fact, Pending, Rule
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.models import Workspace
from clicktrail.services.automations import AutomationStore, get_automation
from clicktrail.services.listing import Page, decode_cursor, page_of

CONSUMER = "automations"
BATCH = 500
RUN_PREFIX = "ar"
PENDING, FIRED, CANCELLED, SKIPPED, FAILED = "pending", "fired", "cancelled", "skipped", "failed"
RUN_STATES = (PENDING, FIRED, CANCELLED, SKIPPED, FAILED)


@dataclass(frozen=True, slots=True)
class ActiveRule:
    """An enabled automation as scheduling reads it."""

    id: int
    workspace_id: int
    rule: Rule


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to insert (ignored when its `run_key` exists)."""

    workspace_id: int
    automation_id: int
    phone: str
    campaign: str | None
    trigger_key: str
    run_key: str
    trigger_us: int
    due_us: int
    state: str = PENDING
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A stored pending run, as cancellation sees it."""

    id: int
    automation_id: int
    pending: Pending


@dataclass(frozen=True, slots=True)
class Run:
    """A run as the API, CLI and dashboard show it."""

    public_id: str
    automation: str  # public id
    phone: str
    campaign: str | None
    trigger_key: str
    trigger_us: int
    due_us: int
    state: str
    reason: str | None
    attempts: int
    fired_us: int | None
    result: str | None
    created_us: int
    updated_us: int


class RunStore(Protocol):
    """What scheduling and listing runs need of storage (`storage.automation_runs`)."""

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        ...

    def active_rules(self, workspace_ids: Sequence[int]) -> list[ActiveRule]:
        """The enabled automations of these workspaces, oldest first."""
        ...

    def pending_runs(self, workspace_id: int, phones: Sequence[str]) -> list[PendingRun]:
        """The workspace's pending runs of these contacts."""
        ...

    def schedule(
        self, consumer: str, new: Sequence[NewRun], cancel: Sequence[tuple[int, str]],
        last: StoredEvent, now_us: int,
    ) -> int:  # fmt: skip
        """Insert `new` runs (skipping run keys that exist), cancel the pending runs of
        `cancel` (id, reason) and move `consumer`'s cursor to `last`, in one transaction;
        return how many runs were inserted."""
        ...

    def runs_page(
        self, automation_id: int, after: str | None, limit: int, state: str | None
    ) -> list[Run]:
        """An automation's runs, newest first, after the one named `after`."""
        ...


@dataclass
class RunScheduler:
    """The outbox consumer that schedules and cancels runs (module docstring)."""

    store: RunStore
    clock: Callable[[], int]
    batch: int = BATCH

    def tick(self) -> int:
        """Read the outbox until it is drained; return how many events were read."""
        read = 0
        while True:
            got = self.store.events_after(CONSUMER, self.batch)
            if not got:
                return read
            self.apply(got)
            read += len(got)
            if len(got) < self.batch:
                return read

    def apply(self, got: Sequence[StoredEvent]) -> None:
        """Schedule and cancel for one batch of events, cursor included (one transaction)."""
        facts = [(e, au.fact_of(e.type, e.occurred_us, e.payload)) for e in got]
        wanted = [(e, f) for e, f in facts if f is not None and f.phone is not None]
        rules: dict[int, list[ActiveRule]] = defaultdict(list)
        for r in self.store.active_rules(sorted({e.workspace_id for e, _ in wanted})):
            rules[r.workspace_id].append(r)
        phones: dict[int, set[str]] = defaultdict(set)
        for e, f in wanted:
            if rules.get(e.workspace_id) and f is not None and f.phone is not None:
                phones[e.workspace_id].add(f.phone)
        # Pending runs of these contacts: stored ones, then this batch's as they come.
        pending: dict[tuple[int, str], list[PendingRun | NewRun]] = defaultdict(list)
        for ws, ps in phones.items():
            for p in self.store.pending_runs(ws, sorted(ps)):
                pending[(ws, p.pending.phone)].append(p)
        new: dict[str, NewRun] = {}
        cancel: dict[int, str] = {}
        for e, f in wanted:
            assert f is not None
            assert f.phone is not None
            by_id = {r.id: r for r in rules.get(e.workspace_id, ())}
            if not by_id:
                continue
            key = (e.workspace_id, f.phone)
            for run in pending[key]:
                rule = by_id.get(run.automation_id)
                if rule is None:
                    continue
                if isinstance(run, PendingRun):
                    if run.id not in cancel:
                        why = au.cancels(rule.rule, run.pending, f)
                        if why is not None:
                            cancel[run.id] = why
                elif new[run.run_key].state == PENDING:
                    pend = Pending(run.trigger_key, run.trigger_us, run.phone)
                    why = au.cancels(rule.rule, pend, f)
                    if why is not None:
                        new[run.run_key] = _cancelled(run, why)
            for rule in by_id.values():
                started = _start(rule, f)
                if started is not None and started.run_key not in new:
                    new[started.run_key] = started
                    pending[key].append(started)
        self.store.schedule(
            CONSUMER, list(new.values()), sorted(cancel.items()), got[-1], self.clock()
        )


def _start(rule: ActiveRule, f: Fact) -> NewRun | None:
    tkey = au.starts(rule.rule, f)
    if tkey is None or f.phone is None:
        return None
    return NewRun(
        rule.workspace_id, rule.id, f.phone, f.campaign, tkey,
        au.run_key(str(rule.id), f.phone, tkey), f.occurred_us, au.due_us(rule.rule, f.occurred_us),
    )  # fmt: skip


def _cancelled(run: NewRun, reason: str) -> NewRun:
    return NewRun(
        run.workspace_id, run.automation_id, run.phone, run.campaign, run.trigger_key,
        run.run_key, run.trigger_us, run.due_us, CANCELLED, reason,
    )  # fmt: skip


def list_runs(
    automations: AutomationStore,
    runs: RunStore,
    workspace: Workspace,
    automation: str,
    limit: int,
    cursor: str | None,
    state: str | None = None,
) -> Page[Run]:
    """Return a page of an automation's runs, newest first (`state`: only those). Raises
    `NotFound` for an automation not in the workspace, `InvalidInput` for a bad state."""
    if state is not None and state not in RUN_STATES:
        raise InvalidInput(f"state must be one of {', '.join(RUN_STATES)}", field="state")
    found = get_automation(automations, workspace, automation)
    after = decode_cursor("runs", cursor)
    rows = runs.runs_page(found.id, after, limit + 1, state)
    return page_of("runs", rows, limit, lambda r: r.public_id)


__all__ = [
    "CANCELLED",
    "CONSUMER",
    "FAILED",
    "FIRED",
    "PENDING",
    "RUN_STATES",
    "SKIPPED",
    "ActiveRule",
    "NewRun",
    "PendingRun",
    "Run",
    "RunScheduler",
    "RunStore",
    "list_runs",
]
