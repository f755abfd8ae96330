"""The A/B statistics (services/experiment_stats.py) against published and hand-computed values."""

from __future__ import annotations

import math

import pytest
from scipy.special import betaln

from clicktrail.domain.bandit import ArmState
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import experiment_stats as st

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score).
WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]

# Newcombe (1998), "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17:873-890, Table II, method 10.
NEWCOMBE = [
    ((56, 70), (48, 80), 0.0524, 0.3339),
    ((9, 10), (3, 10), 0.1705, 0.8090),
    ((6, 7), (2, 7), 0.0582, 0.8062),
    ((5, 56), (0, 29), -0.0381, 0.1926),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON)
def test_the_wilson_interval_matches_newcombe(k: int, n: int, low: float, high: float) -> None:
    got = st.wilson(k, n)
    assert got is not None
    assert (round(got.low, 4), round(got.high, 4)) == (low, high)


@pytest.mark.parametrize(("b", "a", "low", "high"), NEWCOMBE)
def test_the_difference_interval_matches_newcombe(
    b: tuple[int, int], a: tuple[int, int], low: float, high: float
) -> None:
    got = st.compare(ArmState("a", a[1], a[0]), ArmState("b", b[1], b[0]))
    assert got is not None
    assert (round(got.interval.low, 4), round(got.interval.high, 4)) == (low, high)
    assert got.difference == pytest.approx(b[0] / b[1] - a[0] / a[1])


def test_the_p_value_is_the_pooled_two_proportion_z_test() -> None:
    # 56/70 against 48/80 by hand: pooled p = 104/150, z = (0.8 - 0.6) / sqrt(p(1-p)(1/70+1/80)).
    p = 104 / 150
    z = 0.2 / math.sqrt(p * (1 - p) * (1 / 70 + 1 / 80))
    two_sided = math.erfc(z / math.sqrt(2))
    got = st.compare(ArmState("a", 80, 48), ArmState("b", 70, 56))
    assert got is not None
    assert got.p_value == pytest.approx(two_sided, rel=1e-9)
    assert round(z, 4) == 2.6502 and round(two_sided, 4) == 0.0080
    assert got.relative == pytest.approx(0.8 / 0.6 - 1)


def test_no_variation_gives_p_one_and_no_relative_lift_over_zero() -> None:
    got = st.compare(ArmState("a", 100, 0), ArmState("b", 100, 0))
    assert got is not None and got.p_value == 1.0 and got.relative is None
    assert st.compare(ArmState("a", 0, 0), ArmState("b", 10, 1)) is None
    assert st.wilson(0, 0) is None


def _p_b_beats_a(a: ArmState, b: ArmState) -> float:
    # Exact P(p_b > p_a) for Beta posteriors (Evan Miller, "Formulas for Bayesian A/B
    # testing", 2015): sum over i < alpha_b of B(aa+i, ba+bb) / ((bb+i) B(1+i, bb) B(aa, ba)).
    aa, ba, ab, bb = a.alpha, a.beta, b.alpha, b.beta
    return sum(
        math.exp(betaln(aa + i, ba + bb) - math.log(bb + i) - betaln(1 + i, bb) - betaln(aa, ba))
        for i in range(ab)
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [((1000, 30), (1000, 42)), ((200, 10), (180, 9)), ((50, 1), (60, 6))],
)
def test_the_probability_best_agrees_with_the_closed_form(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    arm_a, arm_b = ArmState("a", *a), ArmState("b", *b)
    exact = _p_b_beats_a(arm_a, arm_b)
    probs = st.best_probabilities([arm_a, arm_b], seed=7, draws=40_000)
    # 40,000 draws: a standard error of at most 0.0025; four of them.
    assert probs[1] == pytest.approx(exact, abs=0.01)
    assert sum(probs) == pytest.approx(1.0)
    assert st.best_probabilities([arm_a, arm_b], seed=7, draws=40_000) == probs  # reproducible


def test_the_sample_size_is_cohens_h_formula() -> None:
    # 10 % -> 12 %, alpha 0.05 two-sided, power 0.8: h = 2 asin(sqrt(.12)) - 2 asin(sqrt(.10)),
    # n = 2 ((z_.975 + z_.8) / h)^2 per variant (the pooled-variance formula gives 3,841).
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    z = 1.959963984540054 + 0.8416212335729143
    assert st.sample_size(0.10, 0.02) == math.ceil(2 * (z / h) ** 2) == 3835
    assert st.sample_size(0.10, 0.02, power=0.9) > 3835


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline": 0.0, "mde": 0.01}, "baseline"),
        ({"baseline": 0.5, "mde": 0.6}, "mde"),
        ({"baseline": 0.5, "mde": 0.1, "alpha": 1.5}, "alpha"),
        ({"baseline": 0.5, "mde": 0.1, "power": 0.0}, "power"),
    ],
)
def test_a_sample_size_refuses_impossible_inputs_by_name(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        st.sample_size(**kwargs)
    assert exc.value.field == field


def test_the_sample_ratio_check_is_pearsons_chi_square() -> None:
    # 50,000 against 50,500 on a 50/50 plan: chi2 = 2 * 250^2 / 50,250 = 2.4876, p = 0.1147.
    ok = st.sample_ratio([50_000, 50_500], [0.5, 0.5])
    assert ok is not None and round(ok.p_value, 4) == 0.1147 and not ok.mismatch
    # 50,000 against 51,500: chi2 = 2 * 750^2 / 50,750 = 22.17, p = 2.5e-6: broken.
    bad = st.sample_ratio([50_000, 51_500], [1, 1])
    assert bad is not None and bad.mismatch and bad.p_value == pytest.approx(2.5e-6, rel=0.05)
    assert st.sample_ratio([0, 0], [1, 1]) is None
    with pytest.raises(InvalidInput):
        st.sample_ratio([10, 10], [1.0])
