"""Multi-touch attribution: a conversion's path of touches and the fractional credit each model
gives every touch of it, computed exactly (no I/O, no sampling; docs/attribution.md,
"Multi-touch").

A **path** is the converting contact's touches before the conversion, each within its lookback
window (``0 <= conversion - touch <= window``), in time order (ties: SMS deliveries, then SMS
clicks, then other channels' touches, then the order they were stored). Touches are SMS
deliveries (``delivery``), SMS clicks with a counted bot verdict (``click``) and other channels'
touchpoints (``touch``). For a path of `n` touches, touch `i` (1-based) gets:

* ``linear``: ``1/n``.
* ``time_decay``: ``w_i / sum(w)`` with ``w_i = 2 ** (-(conversion - touch_i) / half_life)``:
  the weight halves for every half-life a touch lies **before the conversion** (not before
  the last touch), so a touch the day of the conversion outweighs one a week earlier.
* ``position_based`` (40/20/40): one touch 1; two touches 1/2 each; three or more: the first
  and the last 2/5 each, the ``n - 2`` between share 1/5 equally.
* ``last_click``: 1 to the last touch that is a click (an SMS click or another channel's
  touch; an SMS delivery is a view, not a click), 0 to the others; a path of deliveries only
  gives no credit under it, as single-touch last click gives none to a view.

Each model's credits over a path add up to 1 (0 for an empty path, and for last click on a path
without clicks). Linear and position-based are exact fractions (`Fraction`); time decay is the
closed form above in floating point (relative error below 1e-15).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from clicktrail.domain.errors import InvalidInput

MODELS = ("linear", "time_decay", "position_based", "last_click")
DAY_US = 86_400 * 1_000_000
DEFAULT_HALF_LIFE_US = 7 * DAY_US
MIN_HALF_LIFE_US = 3_600 * 1_000_000  # 1 hour
MAX_HALF_LIFE_US = 90 * DAY_US
KINDS = ("delivery", "click", "touch")  # the tiebreak order at one microsecond
SMS = "sms"


@dataclass(frozen=True, slots=True)
class Touch:
    """One touch of a contact: `channel` (``sms`` or another channel's name), `kind`
    (``delivery``, ``click`` or ``touch``), when, the campaign it belongs to (an SMS campaign's
    slug, or another channel's label), and `ref`: what identifies it to the caller (kept as
    given). `seq` orders touches stored at the same microsecond. `window_us`: how long before
    a conversion it may still count."""

    channel: str
    kind: str
    at_us: int
    campaign: str | None
    window_us: int
    seq: int = 0
    ref: object = None

    @property
    def is_click(self) -> bool:
        """Whether last click may credit it (an SMS click or another channel's touch)."""
        return self.kind != "delivery"


def path(at_us: int, touches: Iterable[Touch]) -> list[Touch]:
    """Return the path of a conversion at `at_us`: the touches within their window before it,
    in time order (ties broken by kind, then `seq`)."""
    eligible = [t for t in touches if 0 <= at_us - t.at_us <= t.window_us]
    eligible.sort(key=lambda t: (t.at_us, KINDS.index(t.kind), t.seq))
    return eligible


def linear(n: int) -> list[Fraction]:
    """Return the linear credits of a path of `n` touches."""
    return [Fraction(1, n)] * n


def position_based(n: int) -> list[Fraction]:
    """Return the 40/20/40 credits of a path of `n` touches (1; 1/2, 1/2; 2/5, 1/5 shared,
    2/5)."""
    if n <= 2:
        return [Fraction(1, n)] * n
    middle = Fraction(1, 5) / (n - 2)
    return [Fraction(2, 5)] + [middle] * (n - 2) + [Fraction(2, 5)]


def time_decay(at_us: int, touches: Sequence[Touch], half_life_us: int) -> list[float]:
    """Return the time-decay credits of a path for a conversion at `at_us`: weights
    ``2 ** (-(at_us - t) / half_life_us)``, normalised. Computed relative to the newest touch
    (the largest weight is 1), so no weight underflows."""
    if not touches:
        return []
    newest = min(at_us - t.at_us for t in touches)
    weights = [2.0 ** (-(at_us - t.at_us - newest) / half_life_us) for t in touches]
    total = math.fsum(weights)
    return [w / total for w in weights]


def last_click(touches: Sequence[Touch]) -> list[Fraction]:
    """Return the last-click credits of a path: 1 to its last click, 0 elsewhere."""
    out = [Fraction(0)] * len(touches)
    for i in range(len(touches) - 1, -1, -1):
        if touches[i].is_click:
            out[i] = Fraction(1)
            break
    return out


@dataclass(frozen=True, slots=True)
class Credited:
    """One touch of a path with its credit under every model (`credits[m]` for `MODELS[m]`)."""

    touch: Touch
    position: int  # 1-based
    credits: tuple[float, float, float, float]

    def of(self, model: str) -> float:
        """Return the credit under `model`."""
        return self.credits[MODELS.index(model)]


def credit_path(at_us: int, touches: Sequence[Touch], half_life_us: int) -> list[Credited]:
    """Return every touch of a path (as `path` returns it) with its credit under each model."""
    n = len(touches)
    if n == 0:
        return []
    lin, pos, last = linear(n), position_based(n), last_click(touches)
    decay = time_decay(at_us, touches, half_life_us)
    return [
        Credited(t, i + 1, (float(lin[i]), decay[i], float(pos[i]), float(last[i])))
        for i, t in enumerate(touches)
    ]


def check_half_life(us: int, field: str = "half_life") -> int:
    """Return a half-life in µs if it lies within 1 hour and 90 days; raise `InvalidInput`."""
    if not MIN_HALF_LIFE_US <= us <= MAX_HALF_LIFE_US:
        raise InvalidInput(f"{field}: must be at least 1h and at most 90d", field=field)
    return us
