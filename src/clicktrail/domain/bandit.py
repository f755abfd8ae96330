"""Bandit allocation of a campaign's send in waves: Thompson sampling with a floor per variant.

A campaign with variants can go out in waves. Before each wave, every variant's metric so far
(sends that reached a person, and how many of them clicked or converted) gives it a Beta
posterior, Beta(1 + successes, 1 + failures) from a uniform prior. The share of the next wave a
variant gets is the probability that it is the best one, estimated by drawing from every
posterior `draws` times and counting how often each draw is the highest (Thompson sampling, in
its batched form: Chapelle and Li, "An Empirical Evaluation of Thompson Sampling", NIPS 2011;
Russo et al., "A Tutorial on Thompson Sampling", 2018, section 6.1 on batched allocation). Each
variant keeps at least `min_share` of every wave, so that a variant unlucky early can recover
and every variant keeps being measured.

Everything here is pure and reproducible: the draws come from `random.Random` seeded with the
campaign's seed and the wave's number, so a wave's decision can be recomputed, and explained,
from the counts it was made on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from clicktrail.domain.errors import InvalidInput

DEFAULT_DRAWS = 10_000
DEFAULT_MIN_SHARE = 0.01  # bench/RESULTS.md, "Bandit allocation": 1 % beat 5 % in every scenario


@dataclass(frozen=True, slots=True)
class ArmState:
    """What a variant has shown so far: sends that count (delivered) and successes among them."""

    name: str
    trials: int
    successes: int

    @property
    def alpha(self) -> int:
        """The Beta posterior's first parameter (uniform prior)."""
        return 1 + self.successes

    @property
    def beta(self) -> int:
        """The Beta posterior's second parameter (uniform prior)."""
        return 1 + self.trials - self.successes


@dataclass(frozen=True, slots=True)
class Wave:
    """One wave's decision: each variant's probability of being best, its share of the wave
    (after the floor) and how many recipients it gets, in the order of the arms given."""

    number: int
    size: int
    prob_best: tuple[float, ...]
    shares: tuple[float, ...]
    counts: tuple[int, ...]


def check_arms(arms: Sequence[ArmState], min_share: float) -> None:
    """Raise `InvalidInput` unless `arms` and `min_share` make an allocation."""
    if len(arms) < 2:
        raise InvalidInput("a bandit needs at least two variants", field="variants")
    if len({a.name for a in arms}) != len(arms):
        raise InvalidInput("variant names must be distinct", field="variants")
    for a in arms:
        if a.trials < 0 or not 0 <= a.successes <= a.trials:
            raise InvalidInput(
                f"variant {a.name!r}: successes must be between 0 and its trials ({a.trials})",
                field="variants",
            )
    if min_share < 0 or min_share * len(arms) > 1:
        raise InvalidInput(
            f"min_share must be between 0 and 1/{len(arms)} for {len(arms)} variants",
            field="min_share",
        )


def seeded(seed: int | str, wave: int) -> random.Random:
    """The random source of wave `wave` of a campaign seeded `seed` (reproducible)."""
    return random.Random(f"clicktrail-bandit/{seed}/{wave}")


def prob_best(
    arms: Sequence[ArmState], rng: random.Random, draws: int = DEFAULT_DRAWS
) -> list[float]:
    """Return each arm's probability of having the highest rate, by `draws` joint draws from
    their Beta posteriors (ties, of probability zero, go to the first)."""
    wins = [0] * len(arms)
    params = [(a.alpha, a.beta) for a in arms]
    betavariate = rng.betavariate
    for _ in range(draws):
        best, best_x = 0, -1.0
        for i, (al, be) in enumerate(params):
            x = betavariate(al, be)
            if x > best_x:
                best, best_x = i, x
        wins[best] += 1
    return [w / draws for w in wins]


def floor_shares(probs: Sequence[float], min_share: float) -> list[float]:
    """Give each arm `min_share`, and the rest of the wave in proportion to `probs`."""
    rest = 1.0 - min_share * len(probs)
    total = sum(probs)
    if total <= 0:
        return [1.0 / len(probs)] * len(probs)
    return [min_share + rest * p / total for p in probs]


def apportion(total: int, shares: Sequence[float]) -> list[int]:
    """Split `total` recipients by `shares` into whole numbers that add up to `total`
    (largest remainder; ties go to the earlier arm)."""
    exact = [total * s / sum(shares) for s in shares]
    counts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_wave(
    arms: Sequence[ArmState],
    size: int,
    *,
    seed: int | str,
    number: int,
    min_share: float = DEFAULT_MIN_SHARE,
    draws: int = DEFAULT_DRAWS,
) -> Wave:
    """Decide wave `number` (from 1) of `size` recipients from the counts in `arms`."""
    check_arms(arms, min_share)
    if size < 0:
        raise InvalidInput("a wave's size must not be negative", field="size")
    probs = prob_best(arms, seeded(seed, number), draws)
    shares = floor_shares(probs, min_share)
    return Wave(number, size, tuple(probs), tuple(shares), tuple(apportion(size, shares)))
