"""Bot classification of stored requests: provisional within a second (`ClassifyNew`), final
after the settle window, and re-classification of history when the rules change (docs/bots.md).

Request-level signals (user agent, network, headers, timing) are judged when a request is
stored. Behavioural rules need a window of neighbouring requests, so a request becomes final
once `settle_us` has passed: then the windows around it have closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from clicktrail.domain.bots.model import ClickFacts, Verdict
from clicktrail.domain.bots.rules import DEFAULT_RULES, RuleSet, apply_behaviour, request_level
from clicktrail.services.ports import RequestClassifier, Selection, Store, StoredRequest

DEFAULT_SETTLE_US = 15 * 60 * 1_000_000
# Requests too early to be a person's tap; an address showing them in several campaigns gets
# listed (see `listed_entities`).
EARLY_REASONS = frozenset({"DT_BEFORE_DELIVERY", "DT_DELIVERY_LT_2S"})


def listed_entities(store: Store, now_us: int, *, days: int, min_campaigns: int) -> set[str]:
    """Return the entities (``ip:ADDRESS``) seen early in `min_campaigns` campaigns within the
    last `days` days: their requests count as scanner traffic until they stop showing up."""
    return store.listed_early_entities(now_us - days * 86_400_000_000, min_campaigns)


BATCH = 20_000


class ClassifyNew:
    """Gives provisional verdicts to new requests, oldest first.

    The redirect's click writer only appends raw requests to the inbox (it stays fast and
    never waits on classification or indexes); this runs every second in the server and moves
    them to the clicks table with their verdicts, so a verdict follows within about a second
    (longer while a burst saturates the process: it then catches up). Requests stored in
    `clicks` without a verdict (by older versions, imports) get one too; it remembers how far
    it got there, so each pass reads only new rows.
    """

    def __init__(self, store: Store, classifier: RequestClassifier, batch: int = 5000) -> None:
        self.store = store
        self.classifier = classifier
        self.batch = batch
        self.after_id = 0

    def __call__(self) -> int:
        """Classify what is pending; return how many requests got a verdict."""
        done = 0
        while moved := self.store.move_inbox(self.classifier.classify, self.batch):
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


# (ip, campaign id) → kind of network, with the network lists of the campaign's workspace.
IpKind = Callable[[str | None, int], str | None]


def _facts(req: StoredRequest, verdict: Verdict, links: int, ip_kind: IpKind) -> ClickFacts:
    return ClickFacts(
        req.click_id, req.message_id, req.contact_id, req.link_id, req.campaign_id, req.at_us,
        req.ip, req.user_agent, verdict, message_links=links,
        ip_kind=ip_kind(req.ip, req.campaign_id),
    )  # fmt: skip


def _no_kind(_ip: str | None, _campaign_id: int) -> str | None:
    return None


@dataclass
class FinalizeResult:
    """What a finalization pass did."""

    finalized: int = 0
    changed: int = 0


def finalize_settled(
    store: Store,
    now_us: int,
    *,
    settle_us: int = DEFAULT_SETTLE_US,
    rules: RuleSet = DEFAULT_RULES,
    limit: int = BATCH,
    ip_kind: IpKind = _no_kind,
) -> FinalizeResult:
    """Give final verdicts to requests older than the settle window, behaviour included.

    Each request's window (± the widest behavioural window) is read with it, so requests
    near a batch's edges are judged with all their neighbours. Batches follow (campaign,
    time, row id) to the last pending request. `ip_kind` tells shared addresses (carrier
    NAT, Private Relay, a workspace's "mobile" or "relay" list), which need more evidence
    before a fan-out counts (pass the classifier's).
    """
    return _finalize(store, now_us - settle_us, rules, limit, ip_kind, None)


def finalize_campaign(
    store: Store,
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
    return _finalize(
        store, now_us + 1, rules, BATCH, classifier.ip_kind, None, campaign_id
    ).finalized


class PendingQueries(Protocol):
    """What `pending_verdicts` reads (implemented by the SQL store)."""

    def pending_verdicts(self, campaign_id: int) -> tuple[int, int, int | None]:
        """Return (requests not final, of them GET requests counted now, newest one's at_us)."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A campaign's requests whose bot verdict is not final yet.

    `requests`: how many; `counted`: of them, GET requests that count as clicks now (human,
    suspect or no verdict yet) and may still be filtered; `settles_us`: when the newest of them
    is old enough for the settle-window pass (None: nothing pending).
    """

    requests: int
    counted: int
    settles_us: int | None


def pending_verdicts(
    store: PendingQueries, campaign_id: int, *, settle_us: int = DEFAULT_SETTLE_US
) -> Pending:
    """Return how many of the campaign's requests are still provisional and when the last of
    them settles (the server finalizes it within `bot_finalize_interval` seconds after)."""
    requests, counted, newest_us = store.pending_verdicts(campaign_id)
    return Pending(requests, counted, None if newest_us is None else newest_us + settle_us)


@dataclass
class _Rerun:
    """A re-classification under way: what it covers, its classifier, what it counted."""

    selection: Selection
    classify: Callable[[StoredRequest], Verdict]
    progress: Callable[[int], None] | None
    requests: int = 0
    verdict_changes: int = 0
    # (entity, campaign id) → time of the first early request: written at the end, so that
    # the classifier's list of early addresses stays what it was while the run judges.
    sightings: dict[tuple[str, int], int] = field(default_factory=dict)

    def judged(self, req: StoredRequest) -> Verdict:
        """Return the request-level verdict of `req` and count it."""
        verdict = self.classify(req)
        self.requests += 1
        if req.verdict is None or req.verdict.verdict != verdict.verdict:
            self.verdict_changes += 1
        return verdict


def _finalize(
    store: Store,
    before_us: int,
    rules: RuleSet,
    limit: int,
    ip_kind: IpKind,
    rerun: _Rerun | None,
    campaign_id: int | None = None,
) -> FinalizeResult:
    """Finalize the pending requests before `before_us` in (campaign, time, row id) order
    (with `campaign_id`, that campaign's only).

    With `rerun`, the requests it selects are pending too, and judged by its classifier
    first: as context, a selected request counts with its new request-level verdict until
    its own batch has made it final — what storing every new verdict first and finalizing
    afterwards would give, with one write per request instead of two, and none for a request
    whose stored verdict is already the result.
    """
    result = FinalizeResult()
    margin = _widest_window_us(rules)
    links: dict[int, int] = {}
    also = rerun.selection if rerun is not None else None
    # Keys run in (campaign, time, row id) order: one campaign's start right after this key.
    after: tuple[int, int, int] | None = None if campaign_id is None else (campaign_id, -1, 0)
    while True:
        keys = store.requests_to_finalize(before_us, limit, after, also)
        if campaign_id is not None:
            keys = [k for k in keys if k[0] == campaign_id]
        if not keys:
            return result
        start, after = keys[0], keys[-1]
        updates: list[tuple[str, Verdict, bool]] = []
        sightings: list[tuple[str, int, int]] = []
        selected = 0
        for campaign_id, group in groupby(keys, key=lambda k: k[0]):
            batch_keys = list(group)
            ids = {k[2] for k in batch_keys}
            context = store.requests_between(
                campaign_id, batch_keys[0][1] - margin, batch_keys[-1][1] + margin
            )
            base: dict[str, Verdict] = {}
            new: set[str] = set()  # selected requests of this batch: judged again
            for r in context:
                verdict = r.verdict or _HUMAN
                if (
                    rerun is not None
                    and rerun.selection.covers(r.campaign_id, r.at_us)
                    and not (r.at_us < before_us and r.settle_key < start)  # final already
                ):
                    if r.row_id in ids:
                        verdict = rerun.judged(r)
                        new.add(r.click_id)
                    else:
                        verdict = rerun.classify(r)
                elif r.final:
                    # Finalized by an earlier pass (or batch): its windows count it as its
                    # request-level verdict did, whenever this pass runs.
                    verdict = request_level(verdict)
                base[r.click_id] = verdict
            if campaign_id not in links:
                links[campaign_id] = store.link_count(campaign_id)
            facts = [_facts(r, base[r.click_id], links[campaign_id], ip_kind) for r in context]
            changed = apply_behaviour(facts, rules)
            for r in context:
                if r.row_id not in ids:
                    continue
                request_verdict = base[r.click_id]
                if r.ip and EARLY_REASONS.intersection(request_verdict.reasons):
                    if rerun is not None:
                        rerun.sightings.setdefault((f"ip:{r.ip}", r.campaign_id), r.at_us)
                    else:
                        sightings.append((f"ip:{r.ip}", r.campaign_id, r.at_us))
                final = changed.get(r.click_id, request_verdict)
                if r.click_id in changed:
                    result.changed += 1
                if not r.final or r.verdict != final:
                    updates.append((r.click_id, final, True))
                result.finalized += 1
            selected += len(new)
        store.save_verdicts(updates)
        store.record_early_sightings(sightings)
        if rerun is not None and rerun.progress and selected:
            rerun.progress(selected)


_HUMAN = Verdict("human", 0, ())


def _widest_window_us(rules: RuleSet) -> int:
    """Return how far around a batch its context reaches: twice the widest window, so that
    every neighbour of a batch's request is judged with all of its own neighbours too (a
    neighbour a fan-out makes a scanner is left out of a same-link burst)."""
    widest = max(rules.all_links_window_ms, rules.same_token_window_ms, rules.fanout_window_ms)
    return 2 * 1000 * widest


@dataclass
class ReclassifyResult:
    """What a re-classification did."""

    requests: int = 0
    verdict_changes: int = 0
    finalized: int = 0


def reclassify(
    store: Store,
    classifier: RequestClassifier,
    now_us: int,
    *,
    campaign_id: int | None = None,
    since_us: int | None = None,
    settle_us: int = DEFAULT_SETTLE_US,
    rules: RuleSet = DEFAULT_RULES,
    progress: Callable[[int], None] | None = None,
) -> ReclassifyResult:
    """Re-run every rule over stored requests (all, one campaign, or since a time).

    Raw signals are never changed; verdicts, scores, reasons and the classifier version are
    rewritten, and the behavioural pass runs again over everything settled. Reports read
    verdicts, so they follow at once. `verdict_changes` counts the requests whose new
    request-level verdict differs from the one stored before.

    The result is that of giving every selected request its new request-level verdict and
    then finalizing everything settled, but in one pass: settled requests are judged batch
    by batch as they are finalized, and a request is written once, or not at all when its
    stored verdict is already the result. Requests not settled yet get their request-level
    verdict (not final).
    """
    before_us = now_us - settle_us
    rerun = _Rerun(Selection(campaign_id, since_us), classifier.classify, progress)
    # Not settled yet: request-level verdicts only, as the classification job gives them.
    after = 0
    fresh = before_us if since_us is None else max(since_us, before_us)
    while page := store.requests_page(after, BATCH, campaign_id, fresh):
        after = page[-1][0]
        updates = []
        for _, req in page:
            verdict = rerun.judged(req)
            if req.final or req.verdict != verdict:
                updates.append((req.click_id, verdict, False))
        store.save_verdicts(updates)
        if progress:
            progress(len(page))
    done = _finalize(store, before_us, rules, BATCH, classifier.ip_kind, rerun)
    found = [(entity, cp, at) for (entity, cp), at in rerun.sightings.items()]
    for i in range(0, len(found), BATCH):
        store.record_early_sightings(found[i : i + BATCH])
    return ReclassifyResult(rerun.requests, rerun.verdict_changes, done.finalized)
