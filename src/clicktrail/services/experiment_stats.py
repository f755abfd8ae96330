"""The statistics of an A/B test between a campaign's variants (issue 18).

Each variant has a number of exposures (delivered messages) and of successes among them (unique
human clickers, or converters). The statistics come from statsmodels and scipy, imported when
first needed (statsmodels takes about two seconds to import), and are checked against published
values in tests/experiments/test_experiment_stats.py:

* a rate's interval: Wilson's score interval (`proportion_confint`, method ``wilson``;
  Newcombe 1998, "Two-sided confidence intervals for the single proportion", Table I);
* a difference of rates: Newcombe's hybrid score interval (`confint_proportions_2indep`,
  method ``newcomb``; Newcombe 1998, "Interval estimation for the difference between
  independent proportions", method 10) and the two-sided score test without continuity
  correction (`test_proportions_2indep`, method ``score``), which for a difference of zero is
  the pooled two-proportion z-test;
* the probability that each variant is best: Beta(1 + successes, 1 + failures) posteriors
  (uniform prior), by seeded joint draws (domain/bandit.py, the same estimate the bandit
  allocates by);
* a sample size: the recipients per variant that detect an absolute lift `mde` over a
  `baseline` rate with the given power (Cohen's effect size h and `NormalIndPower`, as the
  holdout calculator in services/incrementality.py);
* a sample-ratio mismatch: Pearson's chi-square goodness-of-fit test of the exposures against
  the planned split (`scipy.stats.chisquare`), flagged below p = 0.001 (the threshold
  Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments",
  KDD 2019, recommend so that a healthy test is flagged about once in a thousand).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clicktrail.domain.bandit import DEFAULT_DRAWS, ArmState, prob_best, seeded
from clicktrail.domain.errors import InvalidInput

CONFIDENCE = 0.95
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """Variant `b` against variant `a`: the difference of rates (b − a) with its interval,
    the relative lift (b / a − 1, None when a's rate is zero) and the p-value of equal rates."""

    difference: float
    interval: Interval
    relative: float | None
    p_value: float


@dataclass(frozen=True, slots=True)
class RatioCheck:
    """The sample-ratio check: the p-value of the exposures under the planned split, and
    whether it is below `SRM_THRESHOLD` (the split is broken: do not trust the test)."""

    p_value: float
    mismatch: bool


def _counts(successes: int, trials: int, field: str) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise InvalidInput(
            f"successes ({successes}) must be between 0 and the exposures ({trials})", field=field
        )


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson's score interval of a rate (None without trials)."""
    _counts(successes, trials, "successes")
    if trials == 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    return Interval(float(low), float(high))


def compare(a: ArmState, b: ArmState, confidence: float = CONFIDENCE) -> Comparison | None:
    """Compare variant `b` with variant `a` (None when either has no exposures)."""
    _counts(a.successes, a.trials, a.name)
    _counts(b.successes, b.trials, b.name)
    if a.trials == 0 or b.trials == 0:
        return None
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    with warnings.catch_warnings():
        # statsmodels also computes the ratio of rates, which divides by zero when a's is zero.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(
            b.successes, b.trials, a.successes, a.trials,
            method="newcomb", compare="diff", alpha=1 - confidence,
        )  # fmt: skip
        p_value = _p_value(a, b, test_proportions_2indep)
    rate_a, rate_b = a.successes / a.trials, b.successes / b.trials
    return Comparison(
        difference=rate_b - rate_a,
        interval=Interval(float(low), float(high)),
        relative=rate_b / rate_a - 1 if rate_a else None,
        p_value=p_value,
    )


def _p_value(a: ArmState, b: ArmState, test: Any) -> float:
    if a.successes + b.successes in (0, a.trials + b.trials):
        return 1.0  # no variation at all: the score statistic is 0/0, and nothing differs
    res = test(
        b.successes, b.trials, a.successes, a.trials,
        method="score", compare="diff", correction=False,
    )  # fmt: skip
    return float(res.pvalue)


def best_probabilities(
    arms: Sequence[ArmState], *, seed: int | str, draws: int = DEFAULT_DRAWS
) -> list[float]:
    """Each variant's probability of having the highest rate (reproducible for a `seed`)."""
    for a in arms:
        _counts(a.successes, a.trials, a.name)
    return prob_best(arms, seeded(seed, 0), draws)


def sample_size(baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Recipients per variant to detect an absolute lift of `mde` over a `baseline` rate in a
    two-sided test at level `alpha` with probability `power`. Raises `InvalidInput`."""
    if not 0 < baseline < 1:
        raise InvalidInput("baseline must be a rate between 0 and 1, exclusive", field="baseline")
    if not 0 < mde < 1 - baseline:
        raise InvalidInput(
            f"mde must be above 0 and keep the rate below 1 (at most {1 - baseline:.4g})",
            field="mde",
        )
    if not 0 < alpha < 1:
        raise InvalidInput("alpha must be between 0 and 1", field="alpha")
    if not 0 < power < 1:
        raise InvalidInput("power must be between 0 and 1", field="power")
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(baseline + mde, baseline)
    n = NormalIndPower().solve_power(h, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(float(n))


def sample_ratio(exposures: Sequence[int], shares: Sequence[float]) -> RatioCheck | None:
    """Check the exposures of the variants against their planned shares (None with no
    exposures). Raises `InvalidInput` for shares that do not fit the exposures."""
    if len(exposures) != len(shares) or len(shares) < 2:
        raise InvalidInput("one share per variant, at least two", field="shares")
    if any(s <= 0 for s in shares) or any(n < 0 for n in exposures):
        raise InvalidInput("shares must be positive and exposures not negative", field="shares")
    total = sum(exposures)
    if total == 0:
        return None
    from scipy.stats import chisquare

    weight = sum(shares)
    expected = [total * s / weight for s in shares]
    p = float(chisquare(list(exposures), expected).pvalue)
    return RatioCheck(p, p < SRM_THRESHOLD)
