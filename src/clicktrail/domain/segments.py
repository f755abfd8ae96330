"""Segments: saved filters over a workspace's contacts, and static lists (pure: what a filter
may say, its checks, the built-in segments, and the bounds a filter becomes at a given time).

A filter is a conjunction: every condition given must hold. Conditions on engagement read the
kept scores (domain/engagement.py); storage turns a `SegmentQuery` into SQL. Opted-out contacts
are in no segment unless a filter asks for them with ``opted_in: false`` — and such a segment
is not sendable (a campaign refuses it as its audience).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clicktrail.domain import slugs
from clicktrail.domain.engagement import BANDS, DAY_US, EngagementSettings, key_for_score
from clicktrail.domain.errors import InvalidInput, Problem

KINDS = ("filter", "static")
FIELDS = (
    "band", "score_min", "score_below", "clicked", "clicked_campaign", "no_click_days",
    "converted", "country", "attributes", "opted_in",
)  # fmt: skip
MAX_DAYS = 3650
MAX_COUNTRIES = 250
MAX_ATTRIBUTES = 20
MAX_VALUES = 100
MAX_TEXT = 200
_COUNTRY = re.compile(r"[A-Z]{2}\Z")

# The built-in segments every workspace has (slug: name, filter); their bands follow the
# workspace's engagement settings. They cannot be changed nor deleted.
BUILT_INS: dict[str, tuple[str, dict[str, object]]] = {
    "engaged": ("Engaged", {"band": "engaged"}),
    "at-risk": ("At risk", {"band": "at_risk"}),
    "unengaged": ("Unengaged", {"band": "unengaged"}),
    "never-clicked": ("Never clicked", {"clicked": False}),
}


@dataclass(frozen=True, slots=True)
class SegmentFilter:
    """A checked filter. `clicked_campaign` is a campaign's slug or id as given (the service
    resolves it); `attributes` are (name, accepted values) pairs."""

    band: str | None = None
    score_min: float | None = None
    score_below: float | None = None
    clicked: bool | None = None
    clicked_campaign: str | None = None
    no_click_days: int | None = None
    converted: bool | None = None
    country: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    opted_in: bool = True

    @property
    def sendable(self) -> bool:
        """Whether a campaign may send to the segment (opted-in contacts only)."""
        return self.opted_in

    def as_dict(self) -> dict[str, object]:
        """Return the filter as stored and shown (conditions given only)."""
        out: dict[str, object] = {}
        for name in FIELDS:
            v = getattr(self, name)
            if name == "opted_in":
                if not v:
                    out[name] = False
            elif name == "country":
                if v:
                    out[name] = list(v)
            elif name == "attributes":
                if v:
                    out[name] = {k: list(vals) for k, vals in v}
            elif v is not None:
                out[name] = v
        return out


def _bad(problems: list[Problem], where: str, name: str, message: str) -> None:
    problems.append(Problem(f"{where}{name}", f"{where}{name}: {message}"))


def _text(v: object) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_TEXT and "\x00" not in v


def parse_filter(data: object, where: str = "/filter/") -> SegmentFilter:
    """Return the checked filter of `data` (a mapping of `FIELDS`). Raises `InvalidInput` with
    one problem per bad field, named ``{where}{field}`` (e.g. ``/filter/no_click_days``)."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where.rstrip('/')}: expected an object", field=where.rstrip("/"))
    problems: list[Problem] = []
    for k in data:
        if k not in FIELDS:
            _bad(problems, where, str(k), f"unknown condition; known: {', '.join(FIELDS)}")
    band = data.get("band")
    if band is not None and band not in BANDS:
        _bad(problems, where, "band", f"{band!r} is not one of {', '.join(BANDS)}")
    scores: dict[str, float | None] = {}
    for name in ("score_min", "score_below"):
        v = data.get(name)
        ok = v is None or (
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            and 0 <= v <= 100
        )  # fmt: skip
        if not ok:
            _bad(problems, where, name, f"expected a score from 0 to 100, got {v!r}")
        scores[name] = float(v) if ok and v is not None else None
    if band is not None and (scores["score_min"] is not None or scores["score_below"] is not None):
        _bad(problems, where, "band", "give a band or a score range, not both")
    lo, hi = scores["score_min"], scores["score_below"]
    if hi is not None and hi <= 0:
        _bad(problems, where, "score_below", "must be above 0")
    elif lo is not None and hi is not None and hi <= lo:
        _bad(problems, where, "score_below", f"must be above score_min ({lo:g})")
    flags: dict[str, bool | None] = {}
    for name in ("clicked", "converted", "opted_in"):
        v = data.get(name)
        if v is not None and not isinstance(v, bool):
            _bad(problems, where, name, f"expected true or false, got {v!r}")
        flags[name] = v if isinstance(v, bool) else None
    campaign = data.get("clicked_campaign")
    if campaign is not None and not _text(campaign):
        _bad(problems, where, "clicked_campaign", "expected a campaign's slug or id")
    days = data.get("no_click_days")
    if days is not None and not (
        isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_DAYS
    ):
        _bad(problems, where, "no_click_days", f"expected whole days from 1 to {MAX_DAYS}, "
             f"got {days!r}")  # fmt: skip
    countries = data.get("country")
    country: tuple[str, ...] = ()
    if countries is not None:
        if isinstance(countries, str):
            countries = [countries]
        if not (isinstance(countries, list) and 0 < len(countries) <= MAX_COUNTRIES and all(
            isinstance(c, str) and _COUNTRY.match(c.upper()) for c in countries
        )):  # fmt: skip
            _bad(problems, where, "country", 'expected ISO 3166 country codes such as "US"')
        else:
            country = tuple(sorted({c.upper() for c in countries}))
    attrs = data.get("attributes")
    attributes: list[tuple[str, tuple[str, ...]]] = []
    if attrs is not None:
        if not (isinstance(attrs, Mapping) and 0 < len(attrs) <= MAX_ATTRIBUTES):
            _bad(problems, where, "attributes", f"expected an object of 1 to {MAX_ATTRIBUTES} "
                 "attribute names, each with a value or a list of values")  # fmt: skip
        else:
            for name, value in attrs.items():
                values = value if isinstance(value, list) else [value]
                if not (_text(name) and 0 < len(values) <= MAX_VALUES
                        and all(isinstance(x, str) and "\x00" not in x for x in values)):  # fmt: skip
                    _bad(problems, where, f"attributes/{name}", "expected a text value or a "
                         f"list of 1 to {MAX_VALUES} text values")  # fmt: skip
                else:
                    attributes.append((str(name), tuple(sorted(set(values)))))
    if problems:
        raise InvalidInput(problems[0].message, field=problems[0].field, problems=problems)
    return SegmentFilter(
        band=band, score_min=lo, score_below=hi, clicked=flags["clicked"],
        clicked_campaign=campaign, no_click_days=days, converted=flags["converted"],
        country=country, attributes=tuple(sorted(attributes)),
        opted_in=flags["opted_in"] if flags["opted_in"] is not None else True,
    )  # fmt: skip


def check_slug(slug: str) -> str:
    """Return `slug` if it names a segment (`domain.slugs.check_slug`; not a built-in's name).
    Raises `InvalidInput` (field ``slug``)."""
    slugs.check_slug(slug, "segment")
    if slug in BUILT_INS:
        raise InvalidInput(f"slug: {slug!r} is a built-in segment's name", field="slug")
    return slug


@dataclass(frozen=True, slots=True)
class Segment:
    """A stored segment: a saved filter (`kind` "filter", `filter` set) or a static list
    (`kind` "static"), a built-in one or the workspace's own."""

    id: int
    public_id: str
    workspace_id: int
    slug: str
    name: str
    kind: str
    filter: SegmentFilter | None
    builtin: bool
    created_us: int
    updated_us: int

    @property
    def sendable(self) -> bool:
        """Whether a campaign may send to it (static lists: their opted-in members)."""
        return self.filter is None or self.filter.sendable


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    """A segment's membership at one time, as storage reads it: the static segment whose
    members to take (None: every contact of the workspace), and the conditions with the score
    bounds as stored keys (`key_min`: key >= it; `key_below`: no key, or key < it)."""

    workspace_id: int
    static_segment_id: int | None = None
    key_min: float | None = None
    key_below: float | None = None
    clicked: bool | None = None
    clicked_campaign_id: int | None = None
    no_click_since_us: int | None = None
    converted: bool | None = None
    country: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    opted_in: bool = True


def score_range(
    f: SegmentFilter, settings: EngagementSettings
) -> tuple[float | None, float | None]:
    """Return the filter's score range [min, below) (None: unbounded), its band's included."""
    if f.band == "engaged":
        return settings.engaged_min, None
    if f.band == "at_risk":
        return settings.at_risk_min, settings.engaged_min
    if f.band == "unengaged":
        return None, settings.at_risk_min
    return f.score_min, f.score_below


def query_of(
    f: SegmentFilter,
    workspace_id: int,
    settings: EngagementSettings,
    now_us: int,
    *,
    campaign_id: int | None = None,
    static_segment_id: int | None = None,
) -> SegmentQuery:
    """Return the query of filter `f` at `now_us` (`campaign_id`: its `clicked_campaign`,
    resolved). A score bound of 0 is no bound; a score of 100 is the cap (at least 100: a total
    of 100 or more)."""
    lo, hi = score_range(f, settings)
    return SegmentQuery(
        workspace_id=workspace_id, static_segment_id=static_segment_id,
        key_min=key_for_score(lo, now_us, settings) if lo else None,
        key_below=key_for_score(hi, now_us, settings) if hi else None,
        clicked=f.clicked, clicked_campaign_id=campaign_id,
        no_click_since_us=None if f.no_click_days is None else now_us - f.no_click_days * DAY_US,
        converted=f.converted, country=f.country, attributes=f.attributes, opted_in=f.opted_in,
    )  # fmt: skip
