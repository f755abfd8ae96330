"""Lift and power statistics (services/incrementality.py) against hand computations (the
worked example of docs/attribution.md, "Holdout and lift") and published values."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from clicktrail.domain.errors import InvalidInput
from clicktrail.services.incrementality import Arm, holdout_size, lift, revenue_interval

Z = NormalDist().inv_cdf(0.975)  # 1.959964…


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson's score interval of a proportion, by its formula."""
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def newcomb(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """Newcomb's hybrid score interval of p1 - p0 (Newcomb 1998, method 10), by its formula."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
    )


def test_worked_example_by_hand() -> None:
    # docs/attribution.md: 2,000 delivered contacts, 120 converted (6 %); a holdout of 500,
    # 20 converted (4 %).
    stats = lift(Arm(2000, 120), Arm(500, 20), seed=1)
    assert stats.treated_rate == pytest.approx(0.06)
    assert stats.holdout_rate == pytest.approx(0.04)
    assert stats.absolute_lift == pytest.approx(0.02)
    assert stats.relative_lift == pytest.approx(0.5)
    # p-value: pooled rate 140/2500 = 0.056, se = √(0.056·0.944·(1/2000 + 1/500)) = 0.011496,
    # z = 0.02 / 0.011496 = 1.7397, p = 2·(1 − Φ(1.7397)) = 0.0819.
    pooled = 140 / 2500
    se = math.sqrt(pooled * (1 - pooled) * (1 / 2000 + 1 / 500))
    z = 0.02 / se
    assert z == pytest.approx(1.7397, abs=1e-4)
    assert stats.p_value == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)
    assert stats.p_value == pytest.approx(0.0819, abs=1e-4)
    # Absolute lift, Newcomb: Wilson intervals 6 % of 2,000 → [0.05041, 0.07128], 4 % of
    # 500 → [0.02604, 0.06097]; 0.02 − √(0.00959² + 0.02097²) … 0.02 + √(0.01128² + 0.01396²).
    assert wilson(120, 2000) == pytest.approx((0.05041, 0.07128), abs=1e-5)
    assert wilson(20, 500) == pytest.approx((0.02604, 0.06097), abs=1e-5)
    lo, hi = newcomb(120, 2000, 20, 500)
    assert lo == pytest.approx(0.02 - math.hypot(0.00959, 0.02097), abs=1e-5)
    assert hi == pytest.approx(0.02 + math.hypot(0.01128, 0.01396), abs=1e-5)
    assert (lo, hi) == pytest.approx((-0.00306, 0.03794), abs=1e-5)
    assert stats.absolute_interval is not None
    assert (stats.absolute_interval.low, stats.absolute_interval.high) == pytest.approx((lo, hi))
    # Relative lift, Katz: ln 1.5 ± 1.96·√(1/120 − 1/2000 + 1/20 − 1/500) = 0.40547 ± 0.46312,
    # exp → [0.94397, 2.38354], minus one.
    se_log = math.sqrt(1 / 120 - 1 / 2000 + 1 / 20 - 1 / 500)
    rlo, rhi = math.exp(math.log(1.5) - Z * se_log) - 1, math.exp(math.log(1.5) + Z * se_log) - 1
    assert (rlo, rhi) == pytest.approx((-0.05603, 1.38354), abs=1e-5)
    assert stats.relative_interval is not None
    assert (stats.relative_interval.low, stats.relative_interval.high) == pytest.approx((rlo, rhi))
    assert stats.too_small is None


def test_newcomb_published_example() -> None:
    # Newcomb (1998), Statistics in Medicine 17:873-890, Table II example (a): 56/70 vs 48/80,
    # method 10 (score, no continuity correction): 0.0524 to 0.3339.
    stats = lift(Arm(70, 56), Arm(80, 48), seed=1)
    assert stats.absolute_interval is not None
    assert stats.absolute_interval.low == pytest.approx(0.0524, abs=5e-5)
    assert stats.absolute_interval.high == pytest.approx(0.3339, abs=5e-5)
    assert newcomb(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_power_published_values() -> None:
    # Cohen (1988), Table 8.4.1: h = 0.2, α = 0.05 two-sided, power 0.80 → n = 392 per group
    # (exactly 392.44): two arms of 392 fall just short, two of 393 reach it.
    p0 = 0.5
    p1 = math.sin(math.asin(math.sqrt(p0)) + 0.1) ** 2  # h = 2·asin√p1 − 2·asin√p0 = 0.2
    short = holdout_size(784, p0, p1 - p0)
    assert short.effect_size == pytest.approx(0.2)
    assert not short.reachable
    assert 0.799 < short.power_at_max < 0.8
    plan = holdout_size(786, p0, p1 - p0)
    assert plan.reachable
    assert plan.power_at_max >= 0.8
    assert plan.holdout is not None
    # The smallest holdout of 786 that reaches 80 %: 1/k + 1/(786 − k) ≤ 2/392.44.
    assert 1 / plan.holdout + 1 / (786 - plan.holdout) <= 2 / 392.443
    assert 1 / (plan.holdout - 1) + 1 / (787 - plan.holdout) > 2 / 392.443
    # Unequal arms need a bigger audience: with 10,000 contacts, a much smaller holdout does.
    plan = holdout_size(10_000, p0, p1 - p0)
    assert plan.holdout is not None
    assert plan.holdout < 393
    # By the normal formula: 1/k + 1/(N − k) = (h / (z_{α/2} + z_β))².
    zb = NormalDist().inv_cdf(0.8)
    need = (0.2 / (Z + zb)) ** 2
    k = plan.holdout
    assert 1 / k + 1 / (10_000 - k) <= need < 1 / (k - 1) + 1 / (10_000 - k + 1)


def test_power_unreachable_and_bad_inputs() -> None:
    plan = holdout_size(100, 0.02, 0.005)
    assert not plan.reachable
    assert plan.holdout is None
    assert plan.power_at_max < 0.8
    for kwargs, field in (
        ({"audience": 1, "baseline": 0.1, "mde": 0.01}, "audience"),
        ({"audience": 100, "baseline": 0.0, "mde": 0.01}, "baseline"),
        ({"audience": 100, "baseline": 0.1, "mde": 0.95}, "mde"),
        ({"audience": 100, "baseline": 0.1, "mde": 0.01, "alpha": 0.7}, "alpha"),
        ({"audience": 100, "baseline": 0.1, "mde": 0.01, "power": 1.0}, "power"),
    ):
        with pytest.raises(InvalidInput) as e:
            holdout_size(**kwargs)  # type: ignore[arg-type]
        assert e.value.field == field


def test_revenue_bootstrap_is_seeded_and_covers_the_difference() -> None:
    treated = Arm(400, 40, tuple([25.0] * 40))  # 2.50 per recipient
    holdout = Arm(200, 10, tuple([20.0] * 10))  # 1.00 per recipient
    a = revenue_interval(treated, holdout, seed=5)
    b = revenue_interval(treated, holdout, seed=5)
    assert a == b
    assert a is not None
    assert a.low < 1.5 < a.high
    # The percentile interval of a difference of means is close to the normal one here:
    # se = √(s1²/n1 + s0²/n0) with s² the variance of each arm's per-recipient revenue.
    s1 = math.sqrt(0.1 * 0.9 * 25**2 * 400 / 399)
    s0 = math.sqrt(0.05 * 0.95 * 20**2 * 200 / 199)
    se = math.sqrt(s1**2 / 400 + s0**2 / 200)
    assert a.low == pytest.approx(1.5 - Z * se, abs=0.25)
    assert a.high == pytest.approx(1.5 + Z * se, abs=0.25)
    stats = lift(treated, holdout, seed=5)
    (rev,) = stats.revenue
    assert (rev.treated_per_recipient, rev.holdout_per_recipient) == pytest.approx((2.5, 1.0))
    assert rev.lift == pytest.approx(1.5)
    assert rev.interval == a
    assert revenue_interval(Arm(400, 0), Arm(200, 0), seed=5) is None


def test_too_small_is_said() -> None:
    stats = lift(Arm(300, 12), Arm(30, 1), seed=1)
    assert stats.too_small is not None
    assert "holdout arm has 1 converting" in stats.too_small
    assert stats.detectable_lift is not None
    assert stats.detectable_lift > 0.05  # a holdout of 30 sees only large lifts


def test_large_arms_take_the_normal_revenue_interval() -> None:
    # 60,000 treated (3,000 spent $25) against 15,000 held out (600 spent $20): past
    # BOOTSTRAP_MAX, the normal interval d ± 1.96·√(s1²/n1 + s0²/n0), computed here by hand.
    treated, holdout = Arm(60_000, 3000, (25.0,) * 3000), Arm(15_000, 600, (20.0,) * 600)
    (rev,) = lift(treated, holdout, seed=1).revenue
    assert rev.method == "normal"
    s1 = 0.05 * 0.95 * 25**2 * 60_000 / 59_999
    s0 = 0.04 * 0.96 * 20**2 * 15_000 / 14_999
    half = Z * math.sqrt(s1 / 60_000 + s0 / 15_000)
    assert rev.lift == pytest.approx(1.25 - 0.80)
    assert rev.interval is not None
    assert (rev.interval.low, rev.interval.high) == pytest.approx((0.45 - half, 0.45 + half))
    (small,) = lift(Arm(400, 40, (25.0,) * 40), Arm(200, 10, (20.0,) * 10), seed=5).revenue
    assert small.method == "bootstrap"
