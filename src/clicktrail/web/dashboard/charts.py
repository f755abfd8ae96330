"""Chart geometry for the dashboard: plain numbers the templates draw as inline SVG.

No JavaScript and no chart library: the server computes every rectangle, so the pages work
offline, print well and say the same thing to every browser. Labels stay plain text here; the
templates escape them like everything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def nice_step(value: float) -> int:
    """Return the smallest whole 1, 2, 2.5 or 5 × 10ⁿ that is ≥ `value` (at least 1): a round
    gridline step (2.5 only from 25 up, so steps stay whole numbers)."""
    if value <= 1:
        return 1
    magnitude: float = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * magnitude
        if candidate >= value and candidate == int(candidate):
            return int(candidate)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class Column:
    """One vertical bar: its label, value and rectangle in chart units."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis mark: where it sits and what it says."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class ColumnChart:
    """A column chart in a `width` × `height` view box; the plot sits inside the margins."""

    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: int
    columns: list[Column]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int


def column_chart(
    points: Sequence[tuple[str, int]],
    *,
    ticks: Sequence[str] = (),
    width: int = 1100,
    height: int = 200,
    x_labels: int = 8,
) -> ColumnChart:
    """Return the geometry of a column chart of `points` (label, value), in order.

    About `x_labels` axis labels are shown (every k-th point, from `ticks`, else the points'
    labels) so they never overlap; every column keeps its full label for its tooltip. Four
    gridlines at a round, whole step (so small counts never get fractional ticks).
    """
    left, right, top, bottom_margin = 44, width - 8, 10, 26
    bottom = height - bottom_margin
    top_value = 4 * nice_step(max((v for _, v in points), default=0) / 4)
    names = list(ticks) if len(ticks) == len(points) else [label for label, _ in points]
    n = max(len(points), 1)
    slot = (right - left) / n
    gap = min(2.0, slot * 0.2)
    columns = []
    for i, (label, value) in enumerate(points):
        h = (bottom - top) * value / top_value
        columns.append(Column(label, value, left + i * slot + gap / 2, bottom - h, slot - gap, h))
    every = max(1, math.ceil(n / max(x_labels, 1)))
    x_ticks = [
        Tick(left + i * slot + slot / 2, name) for i, name in enumerate(names) if i % every == 0
    ]
    y_ticks = [Tick(bottom - (bottom - top) * k / 4, _short(top_value * k / 4)) for k in range(5)]
    return ColumnChart(
        width, height, left, top, bottom, right, columns, y_ticks, x_ticks,
        sum(v for _, v in points),
    )  # fmt: skip


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}" if value != int(value) else str(int(value))


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a 100 %-wide stacked bar (`x` and `width` in percent)."""

    label: str
    value: int
    tone: str
    share: float | None
    x: float
    width: float


def stacked(parts: Sequence[tuple[str, int, str]]) -> list[Segment]:
    """Return the segments of a stacked bar of `parts` (label, value, tone), zero parts kept
    (with zero width) so legends stay complete; shares are None when everything is zero."""
    total = sum(v for _, v, _ in parts)
    out, x = [], 0.0
    for label, value, tone in parts:
        w = 100 * value / total if total else 0.0
        out.append(Segment(label, value, tone, value / total if total else None, x, w))
        x += w
    return out


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of a horizontal bar list: `width` in percent of the largest value."""

    label: str
    value: int
    tone: str
    width: float
    note: str = ""


def bars(items: Sequence[tuple[str, int, str]], notes: Sequence[str] = ()) -> list[Bar]:
    """Return horizontal bars for `items` (label, value, tone), scaled to the largest value."""
    top = max((v for _, v, _ in items), default=0)
    notes = list(notes) + [""] * (len(items) - len(notes))
    return [
        Bar(label, value, tone, 100 * value / top if top else 0.0, note)
        for (label, value, tone), note in zip(items, notes, strict=True)
    ]
