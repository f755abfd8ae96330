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
  (`scipy.stats.bootstrap`), seeded with the holdout's seed so a report is reproducible;
* power: Cohen's effect size h and `NormalIndPower` for unequal arms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.holdout import MAX_SHARE, too_small

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
# Memory bound of one bootstrap batch: resamples × recipients values at a time.
BOOTSTRAP_CELLS = 20_000_000
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
class LiftStats:
    """The lift of treated over holdout: conversion rates, their difference (absolute lift)
    and ratio minus one (relative lift) with 95 % intervals and the p-value; revenue per
    recipient of each arm and the bootstrap interval of its difference; whether the sample is
    too small (`too_small`, the reason) and the smallest absolute lift it could detect at
    80 % power (`detectable_lift`)."""

    treated_rate: float | None
    holdout_rate: float | None
    absolute_lift: float | None
    absolute_interval: Interval | None
    relative_lift: float | None
    relative_interval: Interval | None
    p_value: float | None
    treated_revenue_per_recipient: float | None
    holdout_revenue_per_recipient: float | None
    revenue_lift: float | None
    revenue_interval: Interval | None
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


def lift(treated: Arm, holdout: Arm, *, seed: int) -> LiftStats:
    """Return the lift of `treated` over `holdout` (module docstring for the methods); the
    revenue bootstrap draws from `seed`. Figures that cannot be computed (an empty arm, no
    conversion in the holdout for a ratio) are None."""
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
    rpr1, rpr0 = treated.revenue_per_contact, holdout.revenue_per_contact
    revenue_lift = None if rpr1 is None or rpr0 is None else rpr1 - rpr0
    return LiftStats(
        treated.rate, holdout.rate, absolute, abs_ci, relative, rel_ci, p_value,
        rpr1, rpr0, revenue_lift, revenue_interval(treated, holdout, seed=seed),
        too_small(n1, x1, n0, x0), detectable_lift(n1, n0, holdout.rate),
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
