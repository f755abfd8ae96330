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
not change with time). `recompute` does a whole workspace, for when its weights or half-life
change (`clicktrail engagement recompute`).
"""

from __future__ import annotations

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
    summarize,
)
from clicktrail.domain.errors import NotFound
from clicktrail.domain.models import Contact, Workspace
from clicktrail.services.contacts import ContactStore

BATCH = 2000  # contacts per refresh transaction
NOTES_PER_TAKE = 20_000  # notes of contacts to score again, read at a time
RECOMPUTE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class ScoredContact:
    """A contact's state computed under its workspace's settings of `revision`."""

    contact_id: int
    workspace_id: int
    state: EngagementState
    revision: int


@dataclass(frozen=True, slots=True)
class StoredEngagement:
    """A contact's kept state, the settings revision it was computed under, and when."""

    state: EngagementState
    revision: int
    updated_us: int


class EngagementStore(Protocol):
    """What engagement scores need of storage (`storage.engagement.EngagementQueries`)."""

    def engagement_settings(
        self, workspace_ids: Sequence[int]
    ) -> dict[int, tuple[EngagementSettings, int]]:
        """Return {workspace id: (settings, revision)} of workspaces with settings stored."""
        ...

    def set_engagement_settings(
        self, workspace_id: int, settings: EngagementSettings, now_us: int
    ) -> int:
        """Store a workspace's settings; return their new revision."""
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

    def stale_rows(self, workspace_id: int, revision: int) -> int:
        """Return how many kept rows were computed under another settings revision."""
        ...


def settings_of(store: EngagementStore, workspace_id: int) -> tuple[EngagementSettings, int]:
    """Return the workspace's settings and their revision (the defaults, 0, when unset)."""
    return store.engagement_settings([workspace_id]).get(workspace_id, (DEFAULTS, 0))


def _score(store: EngagementStore, contact_ids: Sequence[int]) -> list[ScoredContact]:
    workspaces, events = store.contact_events(contact_ids)
    settings = store.engagement_settings(list(set(workspaces.values())))
    out = []
    for cid in sorted(workspaces):
        ws = workspaces[cid]
        s, rev = settings.get(ws, (DEFAULTS, 0))
        out.append(ScoredContact(cid, ws, summarize(events.get(cid, []), s), rev))
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
    force (after a change of weights or half-life); return how many contacts were read.
    `progress` is called with the running count after each batch."""
    after, seen = 0, 0
    while ids := store.workspace_contact_ids(workspace.id, after, batch):
        store.put_engagement(_score(store, ids), [], now_us)
        after, seen = ids[-1], seen + len(ids)
        if progress is not None:
            progress(seen)
    return seen


@dataclass(frozen=True, slots=True)
class SettingsView:
    """A workspace's settings, their revision, and how many kept scores predate them (0: all
    current; otherwise `clicktrail engagement recompute` brings them up to date)."""

    settings: EngagementSettings
    revision: int
    stale: int
    stored: bool


def get_settings(store: EngagementStore, workspace: Workspace) -> SettingsView:
    """Return the workspace's scoring settings."""
    found = store.engagement_settings([workspace.id]).get(workspace.id)
    s, rev = found if found is not None else (DEFAULTS, 0)
    return SettingsView(s, rev, store.stale_rows(workspace.id, rev), found is not None)


def set_settings(
    store: EngagementStore, workspace: Workspace, changes: dict[str, float | None], now_us: int
) -> SettingsView:
    """Change some of the workspace's settings (None: unchanged) and return them. New events
    score with them at once; kept scores are brought up to date by `recompute`.

    Raises `InvalidInput` naming each bad field (nothing is stored then).
    """
    current, _ = settings_of(store, workspace.id)
    new = current.with_changes(**changes)
    rev = store.set_engagement_settings(workspace.id, new, now_us)
    return SettingsView(new, rev, store.stale_rows(workspace.id, rev), True)


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
    settings, rev = settings_of(store, workspace.id)
    _, events = store.contact_events([contact.id])
    why = explain(events.get(contact.id, []), now_us, settings)
    stored = store.stored_engagement(contact.id)
    kept = score_at(None if stored is None else stored.state.key, now_us, settings)
    fresh = summarize(events.get(contact.id, []), settings)
    current = (stored.state if stored is not None else None) == (
        fresh if fresh.last_event_us is not None else None
    ) and (stored is None or stored.revision == rev)
    return ContactScore(contact, kept, not current, stored, why)
