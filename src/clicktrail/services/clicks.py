"""What happens to a click after the 302: the click pipeline, orchestrated here alone.

The redirect only records a click and answers (web/redirect.py → storage/clicklog.py, spool
then one `click_inbox` row per batch: storage/inbox.py). From there, over storage primitives:

1. `move_inbox`: take a batch from the inbox, give each click its provisional verdict (the
   request-level `bots.Classifier`), then store clicks and verdicts, refresh their messages'
   click rollup and remove the batch — that last step in one transaction.
2. `ClassifyNew`, every second in the jobs process (jobs/): the inbox until it is empty, then
   stored clicks that never got a verdict (older versions, imports).
3. `ClickPipeline.finalize`: requests older than the settle window get their final verdict,
   behaviour included (`bots.finalize_settled`). `finalize_campaign` does a campaign now.
4. After each of those passes, `rescore`: the engagement scores of the contacts whose clicks,
   verdicts or conversions changed (`services.engagement.refresh_dirty`; the writers noted
   them in their transactions).

Storage never classifies nor calls back here; which verdicts count as clicks is the domain's
(`domain.report.COUNTED_VERDICTS`), the click row's shape too (`domain.clicks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.bots.rules import DEFAULT_RULES, RuleSet
from clicktrail.domain.clicks import InboxBatch
from clicktrail.services import bots
from clicktrail.services.bots import ClickStore
from clicktrail.services.clock import now_us
from clicktrail.services.ports import RequestClassifier, StoredRequest


class InboxQueries(Protocol):
    """What moving clicks out of the inbox needs of storage (`storage.clicks`, over
    storage/inbox.py)."""

    def take_inbox(self, limit: int) -> InboxBatch | None:
        """Return about `limit` clicks from the inbox, oldest first (None: empty); whole rows,
        left in place until `put_inbox`."""
        ...

    def put_inbox(self, batch: InboxBatch, verdicts: Sequence[Verdict]) -> int:
        """Store the batch's clicks with their verdicts, refresh their rollup and remove the
        batch from the inbox, in one transaction; return how many clicks it held."""
        ...

    def delivery_times(
        self, message_ids: Iterable[int]
    ) -> dict[int, tuple[int | None, int | None]]:
        """Return {message id: (sent_us, delivered_us)}."""
        ...


class ClickPipelineStore(InboxQueries, ClickStore, Protocol):
    """What the click pipeline needs of storage: the inbox and the stored requests
    (`storage.clicks.ClickQueries`)."""


def move_inbox(
    store: InboxQueries, classify: Callable[[StoredRequest], Verdict], limit: int = 5000
) -> int:
    """Move about `limit` requests from the click inbox to the clicks table, oldest first, each
    with its provisional verdict from `classify`; return how many were moved (0: the inbox is
    empty).

    Batches are whole inbox rows (at least one, however large). A request moved twice (a
    concurrent mover, a replayed spool) is stored once (unique click id).
    """
    batch = store.take_inbox(limit)
    if batch is None:
        return 0
    times = store.delivery_times(r.message_id for r in batch.records)
    verdicts: list[Verdict] = []
    for r in batch.records:
        sent_us, delivered_us = times.get(r.message_id, (None, None))
        req = StoredRequest(
            r.click_id, r.campaign_id, r.message_id, r.contact_id, r.link_id, r.at_us,
            r.method, r.ip, r.user_agent, r.headers, sent_us, delivered_us,
        )  # fmt: skip
        verdicts.append(classify(req))
    return store.put_inbox(batch, verdicts)


class ClassifyNew:
    """Gives provisional verdicts to new requests, oldest first.

    The redirect's click writer only appends raw requests to the inbox (it stays fast and
    never waits on classification or indexes); this runs every second in the jobs process and
    moves them to the clicks table with their verdicts, so a verdict follows within about a
    second (longer while a burst saturates the process: it then catches up). Requests stored
    in `clicks` without a verdict (by older versions, imports) get one too; it remembers how
    far it got there, so each pass reads only new rows.
    """

    def __init__(
        self, store: ClickPipelineStore, classifier: RequestClassifier, batch: int = 5000
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.batch = batch
        self.after_id = 0

    def __call__(self) -> int:
        """Classify what is pending; return how many requests got a verdict."""
        done = 0
        while moved := move_inbox(self.store, self.classifier.classify, self.batch):
            done += moved
        while True:
            page = self.store.requests_page(
                self.after_id, self.batch, None, None, unclassified_only=True
            )
            if not page:
                return done
            self.store.save_verdicts(
                [(req.click_id, self.classifier.classify(req), False) for _, req in page]
            )
            self.after_id = page[-1][0]
            done += len(page)


def finalize_campaign(
    store: ClickPipelineStore,
    classifier: RequestClassifier,
    campaign_id: int,
    now_us: int,
    *,
    rules: RuleSet = DEFAULT_RULES,
) -> int:
    """Give every stored request of campaign `campaign_id` its final verdict now, without
    waiting for the settle window (`clicktrail bots finalize`); return how many were finalized.

    Requests still in the click inbox get their provisional verdict first. Behaviour windows
    see the requests stored so far: a request arriving later is judged with these as
    neighbours (counted as their request-level verdicts), but cannot change them any more.
    """
    ClassifyNew(store, classifier)()
    return bots.finalize_settled(
        store, now_us + 1, settle_us=0, rules=rules, limit=bots.BATCH,
        ip_kind=classifier.ip_kind, campaign_id=campaign_id,
    ).finalized  # fmt: skip


@dataclass
class ClickPipeline:
    """The click work of the jobs process: `process_new` every second (and once more after
    the servers drained their click logs), `finalize` every `bot_finalize_interval` seconds.

    Batches of 2,000 by default: on SQLite a move holds the write lock; shorter holds keep the
    servers' click writers (and their memory) from waiting long behind it.
    """

    store: ClickPipelineStore
    classifier: RequestClassifier
    settle_us: int = bots.DEFAULT_SETTLE_US
    batch: int = 2000
    clock: Callable[[], int] = now_us
    # Engagement scores of the contacts noted since the last pass (None: not kept here).
    rescore: Callable[[], int] | None = None
    _new: ClassifyNew = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._new = ClassifyNew(self.store, self.classifier, self.batch)

    def process_new(self) -> int:
        """Move the inbox to the clicks table with provisional verdicts, and classify stored
        requests without one, then score the contacts they (or conversions) touched; return
        how many got a verdict."""
        done = self._new()
        if self.rescore is not None:
            self.rescore()
        return done

    def finalize(self) -> bots.FinalizeResult:
        """Give final verdicts to the requests older than the settle window, then score the
        contacts whose verdicts changed."""
        result = bots.finalize_settled(
            self.store, self.clock(), settle_us=self.settle_us, ip_kind=self.classifier.ip_kind
        )
        if self.rescore is not None:
            self.rescore()
        return result
