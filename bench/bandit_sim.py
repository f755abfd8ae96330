"""Bandit allocation against a fixed split and explore-then-commit, on simulated campaigns
with known true rates (issue 18).

Each scenario is a campaign of ``--recipients`` people and variants with true rates (click or
conversion rates per delivered message). A recipient who gets variant i succeeds with
probability p_i. Three ways of sending:

- **fixed split**: every variant gets an equal share of everyone;
- **explore-then-commit** (what the anchors offer): a test share (``--test-share``, 20 %) split
  equally, then the rest to the variant with the highest observed rate (raw maximum, no test);
- **Thompson waves**: ``--waves`` equal waves; the first split equally, each later one by
  `clicktrail.domain.bandit.plan_wave` on the successes so far (the policy clicktrail ships,
  with its default draws and a floor per variant of 1 %, its default, and of 5 %), seeded
  per run.

Per way, over ``--runs`` seeded runs: the regret (expected successes lost against sending the
best variant to everyone, Σ n_i (p* − p_i), in successes per 100,000 recipients), the share of
recipients on the best variant, and how often the best variant ended with the most recipients (a tie counts).
Every success is assumed to arrive before the next wave (waves spaced by at least the time
most clicks take: docs/experiments.md).

    .venv/bin/python bench/bandit_sim.py            # 100 runs per scenario (a few minutes)
    .venv/bin/python bench/bandit_sim.py --quick    # 15 runs per scenario
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clicktrail.domain.bandit import DEFAULT_MIN_SHARE, ArmState, apportion, plan_wave

SCENARIOS: dict[str, list[float]] = {
    "clicks, three variants (3.0 / 3.5 / 4.0 %)": [0.030, 0.035, 0.040],
    "clicks, two close variants (3.0 / 3.3 %)": [0.030, 0.033],
    "conversions, two variants (0.4 / 0.6 %)": [0.004, 0.006],
    "no difference (3.0 / 3.0 %)": [0.030, 0.030],
}


@dataclass
class Outcome:
    regret: float  # expected successes lost
    best_share: float
    best_most: bool


def _outcome(rates: list[float], sent: list[int]) -> Outcome:
    best = max(rates)
    total = sum(sent)
    regret = sum(n * (best - p) for n, p in zip(sent, rates, strict=True))
    on_best = sum(n for n, p in zip(sent, rates, strict=True) if p == best)
    most = max(sent)
    return Outcome(
        regret,
        on_best / total,
        any(n == most and p == best for n, p in zip(sent, rates, strict=True)),
    )


def fixed(rates: list[float], n: int, rng: np.random.Generator) -> Outcome:
    return _outcome(rates, apportion(n, [1.0] * len(rates)))


def explore_commit(
    rates: list[float], n: int, rng: np.random.Generator, test_share: float
) -> Outcome:
    test = apportion(round(n * test_share), [1.0] * len(rates))
    wins = [int(rng.binomial(k, p)) for k, p in zip(test, rates, strict=True)]
    observed = [w / k if k else 0.0 for w, k in zip(wins, test, strict=True)]
    winner = max(range(len(rates)), key=lambda i: (observed[i], -i))
    sent = list(test)
    sent[winner] += n - sum(test)
    return _outcome(rates, sent)


def thompson(
    rates: list[float], n: int, rng: np.random.Generator, waves: int, seed: int, floor: float
) -> Outcome:
    names = [f"v{i}" for i in range(len(rates))]
    sent = [0] * len(rates)
    wins = [0] * len(rates)
    sizes = apportion(n, [1.0] * waves)
    for w, size in enumerate(sizes, start=1):
        arms = [ArmState(names[i], sent[i], wins[i]) for i in range(len(rates))]
        counts = plan_wave(arms, size, seed=seed, number=w, min_share=floor).counts
        for i, k in enumerate(counts):
            sent[i] += k
            wins[i] += int(rng.binomial(k, rates[i]))
    return _outcome(rates, sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--waves", type=int, default=10)
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--quick", action="store_true", help="15 runs per scenario")
    args = ap.parse_args()
    runs = 15 if args.quick else args.runs
    n = args.recipients
    load = os.getloadavg()[0]
    print(
        f"# bench/bandit_sim.py — {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {load:.1f}; "
        f"{n:,} recipients, {runs} runs per scenario, {args.waves} waves, "
        f"explore-then-commit on {args.test_share:.0%}"
    )
    started = time.perf_counter()
    scale = 100_000 / n
    for title, rates in SCENARIOS.items():
        results: dict[str, list[Outcome]] = {
            "fixed split": [],
            "explore-then-commit": [],
            "Thompson waves, 5 % floor (default)": [],
            "Thompson waves, 1 % floor": [],
        }
        for r in range(runs):
            results["fixed split"].append(fixed(rates, n, np.random.default_rng([r, 1])))
            results["explore-then-commit"].append(
                explore_commit(rates, n, np.random.default_rng([r, 2]), args.test_share)
            )
            for floor in (0.05, 0.01):
                way = f"Thompson waves, {floor:.0%} floor" + (
                    " (default)" if floor == DEFAULT_MIN_SHARE else ""
                )
                results[way.replace("%", " %")].append(
                    thompson(rates, n, np.random.default_rng([r, 3]), args.waves, r, floor)
                )
        print(f"\n## {title}\n")
        print(
            "| way | regret per 100k (mean) | regret p90 | share on best (mean) | best got most |"
        )
        print("|---|---:|---:|---:|---:|")
        for way, outs in results.items():
            regrets = sorted(o.regret * scale for o in outs)
            p90 = regrets[min(len(regrets) - 1, int(0.9 * len(regrets)))]
            share = statistics.fmean(o.best_share for o in outs)
            most = sum(o.best_most for o in outs) / len(outs)
            print(
                f"| {way} | {statistics.fmean(regrets):.1f} | {p90:.1f} | {share:.1%} | {most:.0%} |"
            )
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
