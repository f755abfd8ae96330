"""Incrementality: what a campaign caused, measured against its holdout, and how big a holdout
must be to measure it (the math, with a worked example: docs/attribution.md, "Holdout and
lift").

The statistics come from statsmodels and scipy, imported when first needed (statsmodels takes
about two seconds to import; a server or a CLI command that never asks for a lift does not pay
for it):

* absolute lift (difference of conversion rates): Newcomb's hybrid score interval
  (`confint_proportions_2indep`, method ``newcomb``);
* relative lift (ratio of rates, minus one): the Katz log interval (method ``log``);
* p-value: the two-sided score test of equal rates without continuity correction
  (`test_proportions_2indep`, method ``score``), which for a difference of zero is the classic
  pooled two-proportion z-test;
* revenue per recipient: a percentile bootstrap of the difference of means
  (`scipy.stats.bootstrap`), seeded with the holdout's seed so a report is reproducible, up to
  `BOOTSTRAP_MAX` recipients in both arms; above (where resampling every recipient 2,000
  times takes minutes: 40 s for 125,000 on a busy 2-core machine) the normal interval of the
  difference of means, which the bootstrap's agrees with at such sizes;
* power: Cohen's effect size h and `NormalIndPower` for unequal arms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from clicktrail.domain.attribution import AttributionSettings, SettingsOverride
from clicktrail.domain.errors import Conflict, InvalidInput
from clicktrail.domain.holdout import DEFAULT_WINDOW_US, MAX_SHARE, too_small
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services.campaigns import CampaignStore, get_campaign
from clicktrail.services.holdouts import DrawRecord

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
# Memory bound of one bootstrap batch: resamples × recipients values at a time.
BOOTSTRAP_CELLS = 20_000_000
BOOTSTRAP_MAX = 50_000  # recipients in both arms; above, the normal interval (module docstring)
MAX_AUDIENCE = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of a lift: its contacts, how many converted, and the revenue of each
    converting contact (the others' is zero)."""

    contacts: int
    converted: int
    revenue: tuple[float, ...] = ()

    @property
    def rate(self) -> float | None:
        """The conversion rate (None without contacts)."""
        return self.converted / self.contacts if self.contacts else None

    @property
    def revenue_per_contact(self) -> float | None:
        """Revenue per contact of the arm (None without contacts)."""
        return sum(self.revenue) / self.contacts if self.contacts else None


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class RevenueLift:
    """Revenue per recipient of each arm in one currency, their difference and its 95 %
    bootstrap interval (None when it cannot be computed)."""

    currency: str
    treated_per_recipient: float
    holdout_per_recipient: float
    lift: float
    interval: Interval | None
    method: str = "bootstrap"  # or "normal" past BOOTSTRAP_MAX recipients


@dataclass(frozen=True, slots=True)
class LiftStats:
    """The lift of treated over holdout: conversion rates, their difference (absolute lift)
    and ratio minus one (relative lift) with 95 % intervals and the p-value; revenue per
    recipient per currency with the bootstrap interval of the difference; whether the sample
    is too small (`too_small`, the reason) and the smallest absolute lift it could detect at
    80 % power (`detectable_lift`)."""

    treated_rate: float | None
    holdout_rate: float | None
    absolute_lift: float | None
    absolute_interval: Interval | None
    relative_lift: float | None
    relative_interval: Interval | None
    p_value: float | None
    revenue: tuple[RevenueLift, ...]
    too_small: str | None
    detectable_lift: float | None
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as a JSON-ready mapping."""
        return asdict(self)


def _finite(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


def _interval(low: Any, high: Any) -> Interval | None:
    lo, hi = _finite(low), _finite(high)
    return None if lo is None or hi is None else Interval(lo, hi)


def lift(
    treated: Arm,
    holdout: Arm,
    *,
    seed: int,
    revenue: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> LiftStats:
    """Return the lift of `treated` over `holdout` (module docstring for the methods), and of
    revenue per recipient for each currency of `revenue` (the per-contact revenues of the
    converting contacts of each arm: treated, holdout; `Arm.revenue` when None), the bootstrap
    drawing from `seed`. Figures that cannot be computed (an empty arm, no conversion in the
    holdout for a ratio) are None."""
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    n1, x1, n0, x0 = treated.contacts, treated.converted, holdout.contacts, holdout.converted
    alpha = 1 - CONFIDENCE
    absolute = relative = p_value = None
    abs_ci = rel_ci = None
    if n1 and n0:
        absolute = x1 / n1 - x0 / n0
        abs_ci = _interval(
            *confint_proportions_2indep(
                x1, n1, x0, n0, method="newcomb", compare="diff", alpha=alpha
            )
        )
        if x1 + x0 in (0, n1 + n0):
            p_value = 1.0  # every contact of both arms alike: no evidence of a difference
        else:
            p_value = _finite(
                test_proportions_2indep(
                    x1, n1, x0, n0, method="score", compare="diff", correction=False
                ).pvalue
            )
        if x0 and x1:
            relative = (x1 / n1) / (x0 / n0) - 1
            lo, hi = confint_proportions_2indep(
                x1, n1, x0, n0, method="log", compare="ratio", alpha=alpha
            )
            rel_ci = _interval(float(lo) - 1, float(hi) - 1)
    if revenue is None:
        revenue = (
            {"": (treated.revenue, holdout.revenue)} if treated.revenue or holdout.revenue else {}
        )
    revenues = []
    if n1 and n0:
        for currency, (values1, values0) in sorted(revenue.items()):
            arm1, arm0 = Arm(n1, x1, tuple(values1)), Arm(n0, x0, tuple(values0))
            rpr1, rpr0 = sum(values1) / n1, sum(values0) / n0
            if n1 + n0 > BOOTSTRAP_MAX:
                ci, method = normal_revenue_interval(arm1, arm0), "normal"
            else:
                ci, method = revenue_interval(arm1, arm0, seed=seed), "bootstrap"
            revenues.append(RevenueLift(currency, rpr1, rpr0, rpr1 - rpr0, ci, method))
    return LiftStats(
        treated.rate, holdout.rate, absolute, abs_ci, relative, rel_ci, p_value,
        tuple(revenues), too_small(n1, x1, n0, x0), detectable_lift(n1, n0, holdout.rate),
    )  # fmt: skip


def revenue_interval(treated: Arm, holdout: Arm, *, seed: int) -> Interval | None:
    """Return the 95 % percentile bootstrap interval of the difference in revenue per
    recipient (treated minus holdout), resampling each arm's contacts (zeros for those who did
    not convert) `BOOTSTRAP_RESAMPLES` times from `seed`; None when an arm has fewer than two
    contacts or no arm has revenue."""
    import numpy as np
    from scipy.stats import bootstrap

    if treated.contacts < 2 or holdout.contacts < 2:
        return None
    if not any(treated.revenue) and not any(holdout.revenue):
        return None
    arms = []
    for arm in (treated, holdout):
        values = np.zeros(arm.contacts)
        values[: len(arm.revenue)] = arm.revenue
        arms.append(values)

    def diff(a: Any, b: Any, axis: int = -1) -> Any:
        return np.mean(a, axis=axis) - np.mean(b, axis=axis)

    batch = max(1, BOOTSTRAP_CELLS // (treated.contacts + holdout.contacts))
    found = bootstrap(
        tuple(arms), diff, n_resamples=BOOTSTRAP_RESAMPLES, batch=batch, vectorized=True,
        paired=False, confidence_level=CONFIDENCE, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    ci = found.confidence_interval
    return _interval(ci.low, ci.high)


def normal_revenue_interval(treated: Arm, holdout: Arm) -> Interval | None:
    """Return the 95 % normal interval of the difference in revenue per recipient (treated
    minus holdout): ``d ± z·√(s₁²/n₁ + s₀²/n₀)`` with each arm's sample variance over all its
    contacts (zeros for those who did not convert); None when an arm has fewer than two."""
    from statistics import NormalDist

    parts = []
    for arm in (treated, holdout):
        n = arm.contacts
        if n < 2:
            return None
        total = sum(arm.revenue)
        mean = total / n
        var = max(0.0, (sum(v * v for v in arm.revenue) - n * mean * mean) / (n - 1))
        parts.append((mean, var / n))
    d = parts[0][0] - parts[1][0]
    half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * math.sqrt(parts[0][1] + parts[1][1])
    return Interval(d - half, d + half)


def detectable_lift(treated: int, holdout: int, baseline: float | None) -> float | None:
    """Return the smallest absolute lift over `baseline` that arms of these sizes detect with
    80 % power at α = 0.05 (two-sided), None when it cannot be computed (an empty arm, a
    baseline of 0 or 1, or no lift small enough)."""
    from statsmodels.stats.power import NormalIndPower

    if not treated or not holdout or baseline is None or not 0 < baseline < 1:
        return None
    try:
        h = NormalIndPower().solve_power(
            effect_size=None, nobs1=holdout, alpha=0.05, power=0.8, ratio=treated / holdout
        )
    except (ValueError, RuntimeError):  # pragma: no cover - solver failure
        return None
    # Cohen's h = 2·asin(√p1) − 2·asin(√p0), solved for p1.
    angle = math.asin(math.sqrt(baseline)) + float(h) / 2
    if angle >= math.pi / 2:
        return None
    return math.sin(angle) ** 2 - baseline


@dataclass(frozen=True, slots=True)
class HoldoutSize:
    """What the power calculator answers: the smallest holdout (`holdout`, of `audience`,
    as a `share`) whose test detects `mde` over `baseline` at `alpha` with `power`; when even
    half the audience is not enough, `reachable` is False and `power_at_max` says what half
    gives."""

    audience: int
    baseline: float
    mde: float
    alpha: float
    power: float
    effect_size: float
    reachable: bool
    holdout: int | None
    treated: int | None
    share: float | None
    power_at_max: float

    def as_dict(self) -> dict[str, Any]:
        """Return the plan as a JSON-ready mapping."""
        return asdict(self)


def check_power_inputs(
    audience: int, baseline: float, mde: float, alpha: float, power: float
) -> None:
    """Raise `InvalidInput` naming the first bad input of the power calculator."""
    if not 2 <= audience <= MAX_AUDIENCE:
        raise InvalidInput(
            f"audience must be between 2 and {MAX_AUDIENCE} contacts, got {audience}",
            field="audience",
        )
    if not 0 < baseline < 1:
        raise InvalidInput(
            f"baseline conversion rate must be between 0 and 1 (exclusive), got {baseline}",
            field="baseline",
        )
    if not 0 < mde < 1 - baseline:
        raise InvalidInput(
            f"minimum detectable effect must be more than 0 and less than 1 - baseline "
            f"({1 - baseline:g}) as an absolute rate, got {mde}",
            field="mde",
        )
    if not 0 < alpha < 0.5:
        raise InvalidInput(f"alpha must be between 0 and 0.5, got {alpha}", field="alpha")
    if not 0.5 <= power < 1:
        raise InvalidInput(
            f"power must be at least 0.5 and less than 1, got {power}", field="power"
        )


def holdout_size(
    audience: int, baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> HoldoutSize:
    """Return the smallest holdout of an `audience` that detects an absolute lift of `mde`
    over a `baseline` conversion rate with a two-sided test at `alpha` with `power`.

    The effect size is Cohen's h between ``baseline + mde`` and ``baseline``; the power of a
    holdout of ``k`` against ``audience - k`` treated is `NormalIndPower`'s, which grows with
    ``k`` up to half the audience; the answer is the smallest ``k`` reaching `power` (found by
    bisection). Raises `InvalidInput` for inputs out of range."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    check_power_inputs(audience, baseline, mde, alpha, power)
    h = float(proportion_effectsize(baseline + mde, baseline))
    calc = NormalIndPower()

    def power_of(k: int) -> float:
        return float(calc.power(h, nobs1=k, alpha=alpha, ratio=(audience - k) / k))

    top = int(audience * MAX_SHARE)
    at_max = power_of(top) if top >= 1 else 0.0
    if top < 1 or at_max < power:
        return HoldoutSize(
            audience, baseline, mde, alpha, power, h, False, None, None, None, at_max
        )
    lo, hi = 1, top  # power_of(hi) >= power
    while lo < hi:
        mid = (lo + hi) // 2
        if power_of(mid) >= power:
            hi = mid
        else:
            lo = mid + 1
    return HoldoutSize(
        audience, baseline, mde, alpha, power, h, True, lo, audience - lo, lo / audience, at_max
    )


# -- the lift report ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArmRows:
    """One arm as storage reads it: its contacts, and each conversion of its contacts in the
    window summed per contact and currency (contact id, currency, value in micros; currency and
    value None for conversions without a value)."""

    contacts: int
    conversions: tuple[tuple[int, str | None, int | None], ...]


class LiftSource(Protocol):
    """What the lift report reads (implemented by `storage.holdouts.HoldoutQueries`)."""

    def holdout_draw(self, campaign_id: int) -> DrawRecord | None:
        """Return the campaign's draw, None before its send started."""
        ...

    def lift_arms(
        self, campaign: Campaign, *, start_us: int, end_us: int, event: str | None
    ) -> tuple[ArmRows, ArmRows]:
        """Return the treated arm (contacts with a delivered message of the campaign, test
        sends apart) and the holdout arm (its held-out contacts), with their conversions in
        the workspace that occurred in [`start_us`, `end_us`) (of `event` only, when given)."""
        ...


@dataclass(frozen=True, slots=True)
class LiftReport:
    """A campaign's lift against its holdout, with what it was measured on: the draw, the
    window (from the draw, when the send started, for both arms; `window_source` says where
    its length came from; `window_open` while it has not ended), the event counted (None: any)
    and each arm's contacts and converting contacts."""

    campaign: str
    slug: str
    draw: DrawRecord
    window_start_us: int
    window_end_us: int
    window_source: str
    window_open: bool
    event: str | None
    treated: Arm
    holdout: Arm
    stats: LiftStats

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        from clicktrail.domain.report import iso_us

        d = self.draw
        return {
            "campaign": self.campaign,
            "slug": self.slug,
            "holdout": {
                "share": d.spec.share, "seed": d.spec.seed, "stratify": d.spec.stratify,
                "eligible": d.eligible, "held_out": d.held, "drawn_at": iso_us(d.drawn_us),
                "strata": [
                    {"name": s.name, "eligible": s.eligible, "held_out": s.held} for s in d.strata
                ],
            },
            "window": {
                "start": iso_us(self.window_start_us), "end": iso_us(self.window_end_us),
                "seconds": (self.window_end_us - self.window_start_us) // 1_000_000,
                "source": self.window_source, "open": self.window_open,
            },
            "event": self.event,
            "treated": {"contacts": self.treated.contacts, "converted": self.treated.converted},
            "holdout_arm": {"contacts": self.holdout.contacts, "converted": self.holdout.converted},
            **self.stats.as_dict(),
        }  # fmt: skip


def lift_report(
    source: LiftSource,
    campaign: Campaign,
    *,
    window_us: int,
    window_source: str,
    now_us: int,
    event: str | None = None,
) -> LiftReport:
    """Return the lift of `campaign` against its holdout: conversions within `window_us` of
    the start of its send, treated (delivered) against held-out contacts.

    Raises `Conflict` when the campaign has no holdout or its send has not started (no draw
    yet)."""
    if campaign.options.holdout is None:
        raise Conflict(
            f"campaign {campaign.slug!r} has no holdout: create a campaign with one "
            "(`--holdout 10%`, or `holdout` in the API) to measure its lift",
            field="campaign",
        )
    drawn = source.holdout_draw(campaign.id)
    if drawn is None:
        raise Conflict(
            f"campaign {campaign.slug!r} has not been sent: its holdout is drawn when the send "
            "starts",
            field="campaign",
        )
    start, end = drawn.drawn_us, drawn.drawn_us + window_us
    treated_rows, holdout_rows = source.lift_arms(campaign, start_us=start, end_us=end, event=event)
    revenue: dict[str, tuple[list[float], list[float]]] = {}
    arms = []
    for side, rows in enumerate((treated_rows, holdout_rows)):
        converted = set()
        for contact_id, currency, micros in rows.conversions:
            converted.add(contact_id)
            if currency is not None and micros is not None:
                revenue.setdefault(currency, ([], []))[side].append(micros / 1_000_000)
        arms.append(Arm(rows.contacts, len(converted)))
    stats = lift(
        arms[0], arms[1], seed=drawn.spec.seed,
        revenue={c: (tuple(t), tuple(h)) for c, (t, h) in revenue.items()},
    )  # fmt: skip
    return LiftReport(
        campaign.public_id, campaign.slug, drawn, start, end, window_source, now_us < end,
        event, arms[0], arms[1], stats,
    )  # fmt: skip


def default_window(_campaign: Campaign) -> tuple[int, str]:
    """The lift window of a campaign without an attribution window of its own: 5 days."""
    return DEFAULT_WINDOW_US, "default"


class WindowSettings(Protocol):
    """Where a campaign's attribution windows are stored (`services.attribution`'s store)."""

    def attribution_overrides(
        self, workspace_id: int
    ) -> tuple[SettingsOverride | None, dict[int, SettingsOverride]]:
        """Return the workspace's stored settings and those of its campaigns, by id."""
        ...


def attribution_window(settings: WindowSettings, campaign: Campaign) -> tuple[int, str]:
    """The lift window of `campaign`: its attribution click window (the campaign's, else its
    workspace's, else the default of 5 days), and where it comes from (``campaign``,
    ``workspace`` or ``default``)."""
    ws, campaigns = settings.attribution_overrides(campaign.workspace_id)
    found = AttributionSettings.resolve(ws, campaigns.get(campaign.id))
    return found.click_window_us, found.source[1]


def campaign_lift(
    campaigns: CampaignStore,
    source: LiftSource,
    workspace: Workspace,
    ref: str,
    *,
    now_us: int,
    event: str | None = None,
    window_for: Callable[[Campaign], tuple[int, str]] = default_window,
) -> LiftReport:
    """Return the lift report of the workspace's campaign `ref` (slug or id), over the window
    `window_for` gives (its length and where it comes from).

    Raises `NotFound` for an unknown campaign, `InvalidInput` for a bad event name, `Conflict`
    when the campaign has no holdout or has not been sent."""
    if event is not None and not (0 < len(event) <= 64 and event.isprintable()):
        raise InvalidInput("event must be 1-64 printable characters", field="event")
    campaign = get_campaign(campaigns, workspace, ref)
    window_us, window_source = window_for(campaign)
    return lift_report(
        source, campaign, window_us=window_us, window_source=window_source, now_us=now_us,
        event=event,
    )  # fmt: skip


def lift_if_any(
    source: LiftSource,
    campaign: Campaign,
    *,
    now_us: int,
    window_for: Callable[[Campaign], tuple[int, str]] = default_window,
) -> LiftReport | None:
    """Return the campaign's lift report, None when it has no holdout or was not sent yet
    (for pages that show the lift where there is one)."""
    if campaign.options.holdout is None or source.holdout_draw(campaign.id) is None:
        return None
    window_us, window_source = window_for(campaign)
    return lift_report(
        source, campaign, window_us=window_us, window_source=window_source, now_us=now_us
    )
