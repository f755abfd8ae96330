"""Engagement scores kept current: a contact's score follows its clicks, verdicts and
conversions within about a second, and says why it is what it is.

The writers of clicks, verdicts and conversions note the contacts they touched in the same
transaction (`engagement_dirty`: storage/inbox.py, storage/clicks.py, storage/conversions.py):
a click moved out of the inbox, a verdict given at the end of the settle window or by a
re-classification, a conversion stored. The click pipeline of the jobs process
(services/clicks.py, every second) calls `refresh_dirty`, which computes those contacts' rows
from their events with the workspace's settings (domain/engagement.py) and deletes the notes it
read — in one transaction, by their own seqs, so a note written meanwhile stays for the next
pass. Reading a score never computes one; a score's decay needs no write (the stored key does
not change with time).

Every kept score is stamped with the epoch it was computed under (`domain.engagement.
scoring_epoch`: the scoring version of the code and the workspace's scoring revision, which a
change of weights or half-life raises). `rescore_stale`, a job of the jobs process, scores the
rows stamped below their workspace's epoch again, a bounded number per pass, each batch one
transaction that stamps what it wrote: a stopped process leaves the rest stale, and the next
one carries on (nothing else records where a rescore is). `recompute` does a whole workspace
at once, every contact read (`clicktrail engagement recompute`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain.engagement import (
    DEFAULTS,
    EngagementEvent,
    EngagementSettings,
    EngagementState,
    Explanation,
    explain,
    score_at,
    scoring_epoch,
    summarize,
)
from clicktrail.domain.errors import NotFound
from clicktrail.domain.models import Contact, Workspace
from clicktrail.services.contacts import ContactStore

BATCH = 2000  # contacts per refresh transaction
NOTES_PER_TAKE = 20_000  # notes of contacts to score again, read at a time
RECOMPUTE_BATCH = 5000
RESCORE_BATCH = 1000  # stale contacts per transaction of `rescore_stale`
RESCORE_BUDGET = 5000  # stale contacts per pass of `rescore_stale`, at most
RESCORE_SECONDS = 1.0  # a pass starts no batch after this long


@dataclass(frozen=True, slots=True)
class KeptSettings:
    """A workspace's settings as stored: `revision` counts every change, `scoring_revision`
    those of weights or half-life (what kept scores are stamped with, through `epoch`)."""

    settings: EngagementSettings
    revision: int
    scoring_revision: int

    @property
    def epoch(self) -> int:
        """The epoch a score computed now under these settings is stamped with."""
        return scoring_epoch(self.scoring_revision)


UNSET = KeptSettings(DEFAULTS, 0, 0)


@dataclass(frozen=True, slots=True)
class ScoredContact:
    """A contact's state computed under its workspace's scoring `epoch`."""

    contact_id: int
    workspace_id: int
    state: EngagementState
    epoch: int


@dataclass(frozen=True, slots=True)
class StoredEngagement:
    """A contact's kept state, the scoring epoch it was computed under, and when."""

    state: EngagementState
    epoch: int
    updated_us: int


class EngagementStore(Protocol):
    """What engagement scores need of storage (`storage.engagement.EngagementQueries`)."""

    def engagement_settings(self, workspace_ids: Sequence[int]) -> dict[int, KeptSettings]:
        """Return {workspace id: settings and revisions} of workspaces with settings stored."""
        ...

    def set_engagement_settings(
        self, workspace_id: int, settings: EngagementSettings, now_us: int, *, rescore: bool
    ) -> int:
        """Store a workspace's settings (`rescore`: its scoring revision goes up too); return
        their new revision."""
        ...

    def take_dirty(self, limit: int) -> list[tuple[int, int]]:
        """Return up to `limit` (seq, contact id) notes, oldest first, left in place."""
        ...

    def contact_events(
        self, contact_ids: Sequence[int]
    ) -> tuple[dict[int, int], dict[int, list[EngagementEvent]]]:
        """Return {contact id: workspace id} and {contact id: events that count}."""
        ...

    def put_engagement(
        self, scored: Sequence[ScoredContact], done: Sequence[int], now_us: int
    ) -> None:
        """Store the states and delete the notes `done`, in one transaction."""
        ...

    def workspace_contact_ids(self, workspace_id: int, after_id: int, limit: int) -> list[int]:
        """Return up to `limit` contact ids of the workspace above `after_id`, by id."""
        ...

    def stored_engagement(self, contact_id: int) -> StoredEngagement | None:
        """Return the contact's kept state (None: a score of 0)."""
        ...

    def stale_rows(self, workspace_id: int, epoch: int) -> tuple[int, int]:
        """Return (kept rows stamped below `epoch`, all kept rows) of the workspace."""
        ...

    def scoring_revisions(self) -> dict[int, int]:
        """Return {workspace id: scoring revision} of every workspace (0 without settings)."""
        ...

    def stale_contacts(self, workspace_id: int, epoch: int, limit: int) -> list[int]:
        """Return up to `limit` contact ids whose kept row is stamped below `epoch`."""
        ...


def kept_settings(store: EngagementStore, workspace_id: int) -> KeptSettings:
    """Return the workspace's settings and revisions (the defaults, 0, when unset)."""
    return store.engagement_settings([workspace_id]).get(workspace_id, UNSET)


def settings_of(store: EngagementStore, workspace_id: int) -> tuple[EngagementSettings, int]:
    """Return the workspace's settings and their revision (the defaults, 0, when unset)."""
    kept = kept_settings(store, workspace_id)
    return kept.settings, kept.revision


def _score(store: EngagementStore, contact_ids: Sequence[int]) -> list[ScoredContact]:
    # Settings are read after the events, with their epoch: a change made meanwhile either
    # is in the row or leaves it stamped below the new epoch (`rescore_stale` redoes it).
    workspaces, events = store.contact_events(contact_ids)
    settings = store.engagement_settings(list(set(workspaces.values())))
    out = []
    for cid in sorted(workspaces):
        ws = workspaces[cid]
        kept = settings.get(ws, UNSET)
        out.append(ScoredContact(cid, ws, summarize(events.get(cid, []), kept.settings),
                                 kept.epoch))  # fmt: skip
    return out


def refresh_dirty(
    store: EngagementStore, now_us: int, limit: int = BATCH, take: int = NOTES_PER_TAKE
) -> int:
    """Score again the contacts noted since the last pass, until none is left; return how
    many notes were done.

    Notes are taken `take` at a time and each contact among them is scored once, `limit`
    contacts per transaction, which deletes exactly the notes of its contacts that were read
    (by seq): every one of them was committed before the contacts' events are read, so none
    is lost. A contact clicked or converting many times between passes has many notes; taken
    a few at a time, it would be scored again for each batch they fall in (a conversion
    batch of 28,000 over 2,000 contacts: 19 times each)."""
    done = 0
    while notes := store.take_dirty(take):
        seqs: dict[int, list[int]] = {}
        for seq, contact_id in notes:
            seqs.setdefault(contact_id, []).append(seq)
        contacts = list(seqs)
        for i in range(0, len(contacts), limit):
            part = contacts[i : i + limit]
            store.put_engagement(_score(store, part), [q for c in part for q in seqs[c]], now_us)
        done += len(notes)
        if len(notes) < take:
            break
    return done


def recompute(
    store: EngagementStore,
    workspace: Workspace,
    now_us: int,
    *,
    batch: int = RECOMPUTE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Compute every contact's score of `workspace` from its events with the settings in
    force, at once (the jobs process does the stale ones by itself: `rescore_stale`; this
    also reads contacts without a kept row, e.g. with clicks stored before scores existed);
    return how many contacts were read. `progress` is called with the running count after
    each batch."""
    after, seen = 0, 0
    while ids := store.workspace_contact_ids(workspace.id, after, batch):
        store.put_engagement(_score(store, ids), [], now_us)
        after, seen = ids[-1], seen + len(ids)
        if progress is not None:
            progress(seen)
    return seen


def rescore_stale(
    store: EngagementStore,
    now_us: int,
    *,
    budget: int = RESCORE_BUDGET,
    batch: int = RESCORE_BATCH,
    seconds: float = RESCORE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Score again up to `budget` contacts whose kept row is stamped below its workspace's
    epoch (after a change of weights or half-life, or a new scoring version); return how many.

    A job of the jobs process. Each batch is one transaction that stamps the rows it writes,
    so the rows left stale are exactly what remains to do: a process stopped mid-rescore loses
    nothing and the next pass carries on. A workspace's stale rows are an index range, so a
    pass with nothing to do costs one lookup per workspace. A pass also stops starting batches
    after `seconds`, so the jobs that share its thread (the click pipeline) wait little."""
    done = 0
    until = clock() + seconds
    for workspace_id, revision in sorted(store.scoring_revisions().items()):
        epoch = scoring_epoch(revision)
        while done < budget and clock() < until:
            ids = store.stale_contacts(workspace_id, epoch, min(batch, budget - done))
            if not ids:
                break
            store.put_engagement(_score(store, ids), [], now_us)
            done += len(ids)
    return done


@dataclass(frozen=True, slots=True)
class SettingsView:
    """A workspace's settings, their revision, and the kept scores: `kept` rows, `stale` of
    them computed under an older epoch (0: all current; otherwise the jobs process is scoring
    them again: "rescoring: kept − stale of kept")."""

    settings: EngagementSettings
    revision: int
    stale: int
    stored: bool
    kept: int = 0

    @property
    def rescored(self) -> int:
        """How many kept scores are current (of `kept`)."""
        return self.kept - self.stale


def _view(
    store: EngagementStore, workspace: Workspace, kept: KeptSettings, stored: bool
) -> SettingsView:
    stale, rows = store.stale_rows(workspace.id, kept.epoch)
    return SettingsView(kept.settings, kept.revision, stale, stored, rows)


def get_settings(store: EngagementStore, workspace: Workspace) -> SettingsView:
    """Return the workspace's scoring settings and how far a rescore of its kept scores is."""
    found = store.engagement_settings([workspace.id]).get(workspace.id)
    return _view(store, workspace, found or UNSET, found is not None)


def set_settings(
    store: EngagementStore, workspace: Workspace, changes: dict[str, float | None], now_us: int
) -> SettingsView:
    """Change some of the workspace's settings (None: unchanged) and return them. New events
    score with them at once; when weights or the half-life changed, the kept scores are stale
    and the jobs process scores them again (`rescore_stale`). A change of bands alone needs
    nothing: bands are read from kept scores.

    Raises `InvalidInput` naming each bad field (nothing is stored then).
    """
    current = kept_settings(store, workspace.id).settings
    new = current.with_changes(**changes)
    store.set_engagement_settings(
        workspace.id, new, now_us, rescore=current.scores_differently(new)
    )
    return _view(store, workspace, kept_settings(store, workspace.id), True)


@dataclass(frozen=True, slots=True)
class ContactScore:
    """A contact's score as segments see it (`score`, from the kept row; `pending` when its
    events changed since and the next pass will move it), and why (`explanation`, computed from
    the events now)."""

    contact: Contact
    score: float
    pending: bool
    stored: StoredEngagement | None
    explanation: Explanation


def explain_contact(
    contacts: ContactStore,
    store: EngagementStore,
    workspace: Workspace,
    contact_ref: str,
    now_us: int,
) -> ContactScore:
    """Return the score of the contact with phone or external id `contact_ref` and every event
    behind it with its decayed weight. Raises `NotFound` (field ``contact``)."""
    contact = contacts.find_contact(workspace.id, contact_ref)
    if contact is None:
        raise NotFound(f"contact {contact_ref!r} not found", field="contact")
    kept_now = kept_settings(store, workspace.id)
    settings = kept_now.settings
    _, events = store.contact_events([contact.id])
    why = explain(events.get(contact.id, []), now_us, settings)
    stored = store.stored_engagement(contact.id)
    kept = score_at(None if stored is None else stored.state.key, now_us, settings)
    fresh = summarize(events.get(contact.id, []), settings)
    current = (stored.state if stored is not None else None) == (
        fresh if fresh.last_event_us is not None else None
    ) and (stored is None or stored.epoch >= kept_now.epoch)
    return ContactScore(contact, kept, not current, stored, why)
