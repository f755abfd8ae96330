"""Bot verdicts of stored requests: the request-level `Classifier`, final verdicts after the
settle window, and re-classification of history when the rules change (docs/bots.md).

Request-level signals (user agent, network, headers, timing) are judged when a request is
stored (services/clicks.py gives every new click its provisional verdict). Behavioural rules
need a window of neighbouring requests, so a request becomes final once `settle_us` has
passed: then the windows around it have closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Protocol

from clicktrail.domain.bots.model import ClickFacts, RequestFacts, Verdict
from clicktrail.domain.bots.rules import (
    DEFAULT_RULES,
    PLAIN_HTTP_RULES,
    RuleSet,
    apply_behaviour,
    classify_request,
    request_level,
)
from clicktrail.services.ports import RequestClassifier, Selection, StoredRequest

DEFAULT_SETTLE_US = 15 * 60 * 1_000_000
# Requests too early to be a person's tap; an address showing them in several campaigns gets
# listed (see `listed_entities`).
EARLY_REASONS = frozenset({"DT_BEFORE_DELIVERY", "DT_DELIVERY_LT_2S"})


class ClickStore(Protocol):
    """Stored requests and their verdicts as classification needs them (`storage.clicks`)."""

    def requests_to_finalize(
        self,
        before_us: int,
        limit: int,
        after: tuple[int, int, int] | None = None,
        also: Selection | None = None,
    ) -> list[tuple[int, int, int]]:
        """Return the keys (campaign id, at_us, row id) of up to `limit` requests before
        `before_us` not final yet (or selected by `also`), in that order, after `after`."""
        ...

    def requests_between(self, campaign_id: int, from_us: int, to_us: int) -> list[StoredRequest]:
        """Return the campaign's requests with from_us <= at_us <= to_us, in time order."""
        ...

    def requests_page(
        self,
        after_id: int,
        limit: int,
        campaign_id: int | None,
        since_us: int | None,
        unclassified_only: bool = False,
    ) -> list[tuple[int, StoredRequest]]:
        """Return (row id, request) of up to `limit` requests with id > `after_id`, by id."""
        ...

    def link_count(self, campaign_id: int) -> int:
        """Return how many links the campaign's template has."""
        ...

    def save_verdicts(self, verdicts: Sequence[tuple[str, Verdict, bool]]) -> None:
        """Store (click id, verdict, final) per request and refresh their messages' rollup."""
        ...

    def record_early_sightings(self, sightings: Sequence[tuple[str, int, int]]) -> None:
        """Store (entity, campaign id, time) sightings; one per entity and campaign is kept."""
        ...

    def listed_early_entities(self, since_us: int, min_campaigns: int) -> set[str]:
        """Return entities seen early in at least `min_campaigns` campaigns since `since_us`."""
        ...


def listed_entities(store: ClickStore, now_us: int, *, days: int, min_campaigns: int) -> set[str]:
    """Return the entities (``ip:ADDRESS``) seen early in `min_campaigns` campaigns within the
    last `days` days: their requests count as scanner traffic until they stop showing up."""
    return store.listed_early_entities(now_us - days * 86_400_000_000, min_campaigns)


BATCH = 20_000

# The facts of one request from its raw signals, with the network lists of its campaign's
# workspace (None: no campaign): method, user agent, headers, ip, at_us, delivered_us, sent_us,
# campaign id. Built by the composition root over the signal adapters (`signals.facts_for`).
FactsOf = Callable[
    [str, str | None, Mapping[str, str], str | None, int, int | None, int | None, int | None],
    RequestFacts,
]
# (ip, campaign id or None) → kind of network, with the same network lists.
IpKindOf = Callable[[str | None, int | None], str | None]
# A phone's user agent and a documentation address: looking them up loads the user-agent rules
# and the IP datasets (about 2 s), which a process does before its first click, not on it.
WARM_UP_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


class Classifier:
    """Request-level bot classification: a request's facts (`facts_of`, from the signal
    adapters), the early-sightings list over them, then the pure rules. The one classifier of
    the jobs process (provisional verdicts), finalization (`ip_kind`), re-classification, the
    API and `clicktrail bots explain`.

    `listed` returns the entities (``ip:ADDRESS``) listed for showing up early in several
    campaigns; it is asked again at most every `listed_ttl` seconds. With `secure_of` (campaign
    id → whether its short links are served over HTTPS, from the domain's scheme), a campaign
    on a plain-HTTP domain is judged with `expect_secure_headers` off: browsers send Fetch
    Metadata and client hints to HTTPS origins only.
    """

    def __init__(
        self,
        facts_of: FactsOf,
        ip_kind_of: IpKindOf,
        *,
        listed: Callable[[], set[str]] | None = None,
        listed_ttl: float = 60.0,
        secure_of: Callable[[int], bool | None] | None = None,
    ) -> None:
        self._facts_of = facts_of
        self._ip_kind_of = ip_kind_of
        self._secure_of = secure_of
        self._plain_http: dict[int, bool] = {}  # campaign id → served over plain HTTP
        self.listed_ttl = listed_ttl
        self._listed_source = listed
        self._listed: set[str] = set()
        self._listed_until = 0.0

    def _listed_now(self) -> set[str]:
        if self._listed_source is not None and time.monotonic() >= self._listed_until:
            self._listed = self._listed_source()
            self._listed_until = time.monotonic() + self.listed_ttl
        return self._listed

    def ip_kind(self, ip: str | None, campaign_id: int | None = None) -> str | None:
        """Return the kind of network of `ip` from the signals' datasets and the network lists
        of the workspace of `campaign_id`."""
        return self._ip_kind_of(ip, campaign_id)

    def facts(self, request: StoredRequest) -> RequestFacts:
        """Return what the rules read of one stored request: its signals' facts, its address
        marked as listed when it showed up early in several campaigns."""
        facts = self._facts_of(
            request.method, request.user_agent, request.headers, request.ip,
            request.at_us, request.delivered_us, request.sent_us, request.campaign_id,
        )  # fmt: skip
        if request.ip and f"ip:{request.ip}" in self._listed_now() and facts.net.listed is None:
            facts = replace(facts, net=replace(facts.net, listed="early-sightings"))
        return facts

    def classify(self, request: StoredRequest) -> Verdict:
        """Return the verdict of one stored request from its own signals."""
        return classify_request(self.facts(request), self.rules_for(request.campaign_id))

    def explain(
        self,
        *,
        method: str,
        user_agent: str | None,
        headers: Mapping[str, str],
        ip: str | None,
        ms_since_delivery: int | None,
        ms_since_send: int | None = None,
    ) -> Verdict:
        """Return the request-level verdict of one described request (no campaign, default
        rules): headers as a client sent them, a missing `user_agent` as a missing header."""
        stored = {k.lower(): v for k, v in headers.items()}
        if user_agent is None:
            stored["_ua"] = "missing"  # as the redirect stores a missing header
        # Times relative to the request at 0 µs: the facts' deltas come out as given.
        facts = self._facts_of(
            method.upper(), user_agent, stored, ip, 0,
            None if ms_since_delivery is None else -ms_since_delivery * 1000,
            None if ms_since_send is None else -ms_since_send * 1000, None,
        )  # fmt: skip
        return classify_request(facts, DEFAULT_RULES)

    def rules_for(self, campaign_id: int) -> RuleSet:
        """Return the rules a request of `campaign_id` is judged with: the defaults, with
        `expect_secure_headers` off when its domain serves short links over plain HTTP (a
        campaign's domain never changes, so the answer is kept)."""
        if self._secure_of is None:
            return DEFAULT_RULES
        plain = self._plain_http.get(campaign_id)
        if plain is None:
            plain = self._plain_http[campaign_id] = self._secure_of(campaign_id) is False
        return PLAIN_HTTP_RULES if plain else DEFAULT_RULES

    def warm_up(self) -> None:
        """Load the user-agent rules and the IP datasets now rather than on the first click."""
        self._facts_of("GET", WARM_UP_UA, {}, "192.0.2.1", 0, None, None, None)


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
    store: ClickStore,
    now_us: int,
    *,
    settle_us: int = DEFAULT_SETTLE_US,
    rules: RuleSet = DEFAULT_RULES,
    limit: int = BATCH,
    ip_kind: IpKind = _no_kind,
    campaign_id: int | None = None,
) -> FinalizeResult:
    """Give final verdicts to requests older than the settle window, behaviour included.

    Each request's window (± the widest behavioural window) is read with it, so requests
    near a batch's edges are judged with all their neighbours. Batches follow (campaign,
    time, row id) to the last pending request. `ip_kind` tells shared addresses (carrier
    NAT, Private Relay, a workspace's "mobile" or "relay" list), which need more evidence
    before a fan-out counts (pass the classifier's). With `campaign_id`, that campaign's
    requests only.
    """
    return _finalize(store, now_us - settle_us, rules, limit, ip_kind, None, campaign_id)


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
    store: ClickStore,
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
    store: ClickStore,
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
