"""Thompson-sampling waves (domain/bandit.py): shares, the floor, whole recipients, seeds."""

from __future__ import annotations

import pytest

from clicktrail.domain.bandit import ArmState, apportion, floor_shares, plan_wave
from clicktrail.domain.errors import InvalidInput


def test_a_clearly_better_variant_gets_most_of_the_next_wave() -> None:
    arms = [ArmState("a", 5000, 100), ArmState("b", 5000, 160), ArmState("c", 5000, 95)]
    wave = plan_wave(arms, 10_000, seed=1, number=2, min_share=0.05)
    assert wave.prob_best[1] > 0.99
    assert wave.counts[1] >= 8_900 and sum(wave.counts) == 10_000
    # The floor asked for: every variant keeps at least 5 % of the wave.
    assert min(wave.counts) >= 500


def test_without_evidence_the_wave_is_split_about_evenly() -> None:
    arms = [ArmState("a", 0, 0), ArmState("b", 0, 0)]
    wave = plan_wave(arms, 1000, seed="spring", number=1)
    assert all(0.45 < s < 0.55 for s in wave.shares)


def test_a_wave_is_reproducible_from_its_seed_and_number() -> None:
    arms = [ArmState("a", 300, 12), ArmState("b", 300, 15)]
    one = plan_wave(arms, 777, seed=42, number=3)
    assert plan_wave(arms, 777, seed=42, number=3) == one
    assert plan_wave(arms, 777, seed=42, number=4).prob_best != one.prob_best


def test_the_floor_and_apportioning() -> None:
    assert floor_shares([1.0, 0.0, 0.0], 0.1) == pytest.approx([0.8, 0.1, 0.1])
    assert floor_shares([0.0, 0.0], 0.1) == [0.5, 0.5]
    assert apportion(10, [1 / 3, 1 / 3, 1 / 3]) == [4, 3, 3]
    assert apportion(7, [0.5, 0.25, 0.25]) == [3, 2, 2]  # 3.5, 1.75, 1.75
    assert sum(apportion(1_000_003, [0.2, 0.3, 0.5])) == 1_000_003


@pytest.mark.parametrize(
    ("arms", "min_share", "field"),
    [
        ([ArmState("a", 10, 1)], 0.05, "variants"),
        ([ArmState("a", 10, 1), ArmState("a", 10, 2)], 0.05, "variants"),
        ([ArmState("a", 10, 11), ArmState("b", 10, 2)], 0.05, "variants"),
        ([ArmState("a", 10, 1), ArmState("b", 10, 2)], 0.6, "min_share"),
        ([ArmState("a", 10, 1), ArmState("b", 10, 2)], -0.1, "min_share"),
    ],
)
def test_impossible_allocations_are_refused_by_name(
    arms: list[ArmState], min_share: float, field: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        plan_wave(arms, 100, seed=1, number=1, min_share=min_share)
    assert exc.value.field == field
