"""Bot classification of stored requests: provisional within a second (`ClassifyNew`), final
after the settle window, and re-classification of history when the rules change (docs/bots.md).

Request-level signals (user agent, network, headers, timing) are judged when a request is
stored. Behavioural rules need a window of neighbouring requests, so a request becomes final
once `settle_us` has passed: then the windows around it have closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from clicktrail.domain.bots.model import ClickFacts, Verdict
from clicktrail.domain.bots.rules import DEFAULT_RULES, RuleSet, apply_behaviour
from clicktrail.services.ports import RequestClassifier, Store, StoredRequest

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


def _facts(
    req: StoredRequest, verdict: Verdict, links: int, ip_kind: Callable[[str | None], str | None]
) -> ClickFacts:
    return ClickFacts(
        req.click_id, req.message_id, req.contact_id, req.link_id, req.campaign_id, req.at_us,
        req.ip, req.user_agent, verdict, message_links=links, ip_kind=ip_kind(req.ip),
    )  # fmt: skip


def _no_kind(_ip: str | None) -> str | None:
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
    ip_kind: Callable[[str | None], str | None] = _no_kind,
) -> FinalizeResult:
    """Give final verdicts to requests older than the settle window, behaviour included.

    Each request's window (± the widest behavioural window) is read with it, so requests
    near a batch's edges are judged with all their neighbours. Repeats until none is left.
    `ip_kind` tells shared addresses (carrier NAT, Private Relay), which need more evidence
    before a fan-out counts (pass the classifier's).
    """
    result = FinalizeResult()
    margin = _widest_window_us(rules)
    while True:
        pending = store.requests_to_finalize(now_us - settle_us, limit)
        if not pending:
            return result
        updates: list[tuple[str, Verdict, bool]] = []
        sightings: list[tuple[str, int, int]] = []
        for campaign_id, group in groupby(pending, key=lambda r: r.campaign_id):
            batch = list(group)
            context = store.requests_between(
                campaign_id, batch[0].at_us - margin, batch[-1].at_us + margin
            )
            base = {r.click_id: r.verdict or _HUMAN for r in context}
            links = store.link_count(campaign_id)
            facts = [_facts(r, base[r.click_id], links, ip_kind) for r in context]
            changed = apply_behaviour(facts, rules)
            sightings.extend(
                (f"ip:{r.ip}", r.campaign_id, r.at_us)
                for r in batch
                if r.ip and EARLY_REASONS.intersection(base[r.click_id].reasons)
            )
            for r in batch:
                final = changed.get(r.click_id, base[r.click_id])
                if r.click_id in changed:
                    result.changed += 1
                updates.append((r.click_id, final, True))
        store.save_verdicts(updates)
        store.record_early_sightings(sightings)
        result.finalized += len(updates)


_HUMAN = Verdict("human", 0, ())


def _widest_window_us(rules: RuleSet) -> int:
    return 1000 * max(rules.all_links_window_ms, rules.same_token_window_ms, rules.fanout_window_ms)


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
    rewritten, and the behavioural pass then runs again over everything settled. Reports
    read verdicts, so they follow at once.
    """
    result = ReclassifyResult()
    after = 0
    while True:
        page = store.requests_page(after, BATCH, campaign_id, since_us)
        if not page:
            break
        after = page[-1][0]
        updates = []
        for _, req in page:
            verdict = classifier.classify(req)
            if req.verdict is None or req.verdict.verdict != verdict.verdict:
                result.verdict_changes += 1
            updates.append((req.click_id, verdict, False))
        store.save_verdicts(updates)
        result.requests += len(page)
        if progress:
            progress(len(page))
    result.finalized = finalize_settled(
        store, now_us, settle_us=settle_us, rules=rules, ip_kind=classifier.ip_kind
    ).finalized
    return result
