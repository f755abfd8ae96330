"""Engagement scores: what a contact's human clicks, conversions and preview fetches add up to,
each decayed by its age (pure arithmetic; storage keeps one number per contact).

An event of weight ``w`` at time ``t`` is worth ``w * 2 ** (-(now - t) / half_life)`` now: its
full weight when it happens, half after one half-life. A contact's *total* is the sum over its
events; its *score* is the total capped at `SCORE_CAP` (so "72" reads on a 0–100 scale), and
every part of it is explainable (`explain`).

Every term decays at the same rate, so the total at any time is ``2 ** (key - now / half_life)``
with one number per contact that does not change with time::

    key = log2(sum(w_i * 2 ** (t_i / half_life)))

Storage keeps `key` (docs/segments.md, "How scores are kept"): a score band such as "score >= 8
now" is ``key >= log2(8) + now / half_life`` (`key_for_score`), a range over an index, and a
contact's row changes only when its events do. Times are integer microseconds (ADR 0002); a key of None
means a total of zero (no weighted event).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.report import COUNTED_VERDICTS

SCORE_CAP = 100.0
DAY_US = 86_400 * 1_000_000
# What an event is: a person's tap on a link that is not an opt-out link (a counted click,
# `domain.report.COUNTED_VERDICTS`), a conversion, or a link-preview fetch (the message was
# displayed in an app that previews links: a weak sign of attention).
CLICK, CONVERSION, PREVIEW = "click", "conversion", "preview"
KINDS = (CLICK, CONVERSION, PREVIEW)
BANDS = ("engaged", "at_risk", "unengaged")
MAX_WEIGHT = 1000.0
MIN_HALF_LIFE_DAYS = 1 / 24  # an hour
MAX_HALF_LIFE_DAYS = 3650.0
# The version of the scoring itself (what counts, and how a key is computed from events and
# settings). A release that changes it raises it: every kept score is then computed under an
# older epoch (`scoring_epoch`) and the jobs process scores it again in the background.
SCORING_VERSION = 1
EPOCH_STRIDE = 1_000_000  # scoring revisions of a workspace under one version: plenty
SCORING_FIELDS = ("click_weight", "conversion_weight", "preview_weight", "half_life_days")


def scoring_epoch(scoring_revision: int, version: int | None = None) -> int:
    """Return the epoch a kept score computed now is stamped with: the scoring version (default
    `SCORING_VERSION`, read when called) and the workspace's scoring revision — the number of
    changes of its weights or half-life. A kept score of a lower epoch is stale."""
    v = SCORING_VERSION if version is None else version
    return v * EPOCH_STRIDE + scoring_revision


@dataclass(frozen=True, slots=True)
class EngagementSettings:
    """A workspace's scoring: the weight of each kind of event, the half-life of the decay, and
    the bands of the built-in segments.

    The defaults: one human click is worth 10 points, a conversion 30, a preview fetch 1, and
    half of that is left after 30 days. A contact is *engaged* at 8 or more (a click in the last
    ~10 days, or two in the last ~40), *at risk* from 2 up to 8 (a single click fades below 2
    after ~70 days), *unengaged* below 2.
    """

    click_weight: float = 10.0
    conversion_weight: float = 30.0
    preview_weight: float = 1.0
    half_life_days: float = 30.0
    engaged_min: float = 8.0
    at_risk_min: float = 2.0

    @property
    def half_life_us(self) -> float:
        """The half-life in microseconds."""
        return self.half_life_days * DAY_US

    def weight(self, kind: str) -> float:
        """Return the weight of an event of `kind` (one of `KINDS`)."""
        if kind == CLICK:
            return self.click_weight
        if kind == CONVERSION:
            return self.conversion_weight
        if kind == PREVIEW:
            return self.preview_weight
        raise ValueError(f"unknown event kind {kind!r}")

    def with_changes(self, **changes: float | None) -> EngagementSettings:
        """Return these settings with the given fields changed (None: unchanged), checked.

        Raises `InvalidInput` naming each bad field; nothing is changed then.
        """
        known = {f.name for f in fields(self)}
        problems = [Problem(k, f"unknown setting {k!r}") for k in changes if k not in known]
        if problems:
            raise InvalidInput(problems[0].message, field=problems[0].field, problems=problems)
        out = replace(self, **{k: float(v) for k, v in changes.items() if v is not None})
        out.check()
        return out

    def scores_differently(self, other: EngagementSettings) -> bool:
        """Whether `other` gives some events another value (weights, half-life): kept scores
        must then be computed again. The bands only read kept scores."""
        return any(getattr(self, f) != getattr(other, f) for f in SCORING_FIELDS)

    def check(self) -> None:
        """Raise `InvalidInput` naming every field out of its range."""
        problems: list[Problem] = []
        for name in ("click_weight", "conversion_weight", "preview_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= MAX_WEIGHT):
                problems.append(Problem(name, f"{name} must be from 0 to {MAX_WEIGHT:g}, got {v}"))
        h = self.half_life_days
        if not (math.isfinite(h) and MIN_HALF_LIFE_DAYS <= h <= MAX_HALF_LIFE_DAYS):
            problems.append(
                Problem("half_life_days", f"half_life_days must be from 1/24 (an hour) to "
                        f"{MAX_HALF_LIFE_DAYS:g}, got {h}")
            )  # fmt: skip
        for name in ("engaged_min", "at_risk_min"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 < v <= SCORE_CAP):
                problems.append(Problem(name, f"{name} must be above 0 and at most 100, got {v}"))
        if not problems and self.at_risk_min >= self.engaged_min:
            problems.append(
                Problem("at_risk_min", f"at_risk_min ({self.at_risk_min:g}) must be below "
                        f"engaged_min ({self.engaged_min:g})")
            )  # fmt: skip
        if problems:
            raise InvalidInput(problems[0].message, field=problems[0].field, problems=problems)


DEFAULTS = EngagementSettings()


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """One event of a contact that may count: its kind, when, and what it was (`ref`: the
    click id or the conversion's public id; `label`: the campaign's slug, or the event name)."""

    kind: str
    at_us: int
    ref: str
    label: str | None = None


def event_kind(verdict: str | None, is_click: object, optout_link: bool) -> str | None:
    """Return the kind of a stored request (`CLICK`, `PREVIEW`) or None when it does not count:
    a counted click (a GET whose verdict is human, suspect or not given yet) on a link that is
    not an opt-out link, or a request judged a preview fetch."""
    if verdict == "preview":
        return PREVIEW
    if is_click and not optout_link and (verdict is None or verdict in COUNTED_VERDICTS):
        return CLICK
    return None


def _log2_sum(terms: Sequence[float]) -> float | None:
    # log2(sum(2 ** a)) without overflow: the largest term factored out.
    if not terms:
        return None
    top = max(terms)
    return top + math.log2(math.fsum(2.0 ** (a - top) for a in terms))


def _term(weight: float, at_us: int, half_life_us: float) -> float:
    return math.log2(weight) + at_us / half_life_us


def key_of(events: Iterable[EngagementEvent], settings: EngagementSettings) -> float | None:
    """Return the stored form of the events' decayed total (module docstring), None when it is
    zero (no event, or only events of weight 0)."""
    h = settings.half_life_us
    terms = [_term(w, e.at_us, h) for e in events if (w := settings.weight(e.kind)) > 0]
    return _log2_sum(terms)


def total_at(key: float | None, now_us: int, settings: EngagementSettings) -> float:
    """Return the decayed total at `now_us` of a stored `key` (uncapped)."""
    if key is None:
        return 0.0
    return float(2.0 ** (key - now_us / settings.half_life_us))


def score_at(key: float | None, now_us: int, settings: EngagementSettings) -> float:
    """Return the score at `now_us`: the decayed total, capped at `SCORE_CAP`."""
    return min(SCORE_CAP, total_at(key, now_us, settings))


def key_for_score(score: float, now_us: int, settings: EngagementSettings) -> float:
    """Return the smallest stored key whose score at `now_us` is at least `score` (> 0): the
    bound a band query compares keys with."""
    return math.log2(score) + now_us / settings.half_life_us


def band_of(score: float, settings: EngagementSettings) -> str:
    """Return the band (`BANDS`) a score falls in."""
    if score >= settings.engaged_min:
        return "engaged"
    if score >= settings.at_risk_min:
        return "at_risk"
    return "unengaged"


def decayed(weight: float, at_us: int, now_us: int, settings: EngagementSettings) -> float:
    """Return what an event of `weight` at `at_us` is worth at `now_us`."""
    return weight * float(2.0 ** (-(now_us - at_us) / settings.half_life_us))


@dataclass(frozen=True, slots=True)
class EngagementState:
    """What storage keeps of a contact: the key, and counts and times that filters read."""

    key: float | None
    clicks: int
    conversions: int
    previews: int
    last_click_us: int | None
    last_conversion_us: int | None
    last_event_us: int | None


def summarize(events: Sequence[EngagementEvent], settings: EngagementSettings) -> EngagementState:
    """Return the state of a contact with these events (in any order)."""

    def last(kind: str) -> int | None:
        return max((e.at_us for e in events if e.kind == kind), default=None)

    return EngagementState(
        key_of(events, settings),
        sum(1 for e in events if e.kind == CLICK),
        sum(1 for e in events if e.kind == CONVERSION),
        sum(1 for e in events if e.kind == PREVIEW),
        last(CLICK),
        last(CONVERSION),
        max((e.at_us for e in events), default=None),
    )


@dataclass(frozen=True, slots=True)
class Contribution:
    """One event's part of a score: its weight, its age and what it is worth now."""

    event: EngagementEvent
    weight: float
    age_days: float
    value: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a contact has its score: each event's contribution (largest first), their sum
    (`total`, uncapped), the score, its band, and the settings used."""

    score: float
    total: float
    band: str
    settings: EngagementSettings
    contributions: list[Contribution] = field(default_factory=list)


def explain(
    events: Iterable[EngagementEvent], now_us: int, settings: EngagementSettings
) -> Explanation:
    """Return each event's decayed contribution at `now_us`, largest first, and the score they
    add up to (capped at `SCORE_CAP`)."""
    parts = [
        Contribution(e, w, (now_us - e.at_us) / DAY_US, decayed(w, e.at_us, now_us, settings))
        for e in events
        if (w := settings.weight(e.kind)) > 0
    ]
    parts.sort(key=lambda c: (-c.value, c.event.at_us, c.event.ref))
    total = math.fsum(c.value for c in parts)
    score = min(SCORE_CAP, total)
    return Explanation(score, total, band_of(score, settings), settings, parts)
