"""Engagement score arithmetic (domain/engagement.py): exact decayed values, the stored key
against the explanation, the cap, bands and their SQL bound, settings checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.engagement import (
    CLICK,
    CONVERSION,
    DAY_US,
    DEFAULTS,
    PREVIEW,
    EngagementEvent,
    EngagementSettings,
    band_of,
    event_kind,
    explain,
    key_for_score,
    key_of,
    score_at,
    summarize,
    total_at,
)
from clicktrail.domain.errors import InvalidInput

NOW = 1_780_000_000_000_000


def ev(kind: str, days_ago: float, ref: str = "x") -> EngagementEvent:
    return EngagementEvent(kind, NOW - round(days_ago * DAY_US), ref)


def test_each_kind_decays_by_half_per_half_life() -> None:
    # Defaults: click 10, conversion 30, preview 1, half-life 30 days.
    cases = [
        (ev(CLICK, 0), 10.0), (ev(CLICK, 30), 5.0), (ev(CLICK, 60), 2.5), (ev(CLICK, 90), 1.25),
        (ev(CONVERSION, 0), 30.0), (ev(CONVERSION, 30), 15.0), (ev(PREVIEW, 60), 0.25),
        (ev(CLICK, 15), 10 / math.sqrt(2)),
    ]  # fmt: skip
    for e, want in cases:
        why = explain([e], NOW, DEFAULTS)
        assert why.contributions[0].value == pytest.approx(want, rel=1e-12), e
        assert score_at(key_of([e], DEFAULTS), NOW, DEFAULTS) == pytest.approx(want, rel=1e-12)


def test_a_contact_at_72_point_5() -> None:
    # 5 clicks today (50) + a conversion 30 days ago (15) + a click 30 days ago (5) + 5
    # previews 30 days ago (5 × 0.5): 72.5, every part listed, largest first.
    events = [ev(CLICK, 0, f"c{i}") for i in range(5)]
    events += [ev(CONVERSION, 30, "cv"), ev(CLICK, 30, "old")]
    events += [ev(PREVIEW, 30, f"p{i}") for i in range(5)]
    why = explain(events, NOW, DEFAULTS)
    assert why.total == pytest.approx(72.5, rel=1e-12)
    assert why.score == pytest.approx(72.5, rel=1e-12)
    assert why.band == "engaged"
    assert [round(c.value, 6) for c in why.contributions] == [15.0] + [10.0] * 5 + [5.0] + [0.5] * 5
    assert why.contributions[0].event.ref == "cv"
    assert why.contributions[0].age_days == pytest.approx(30.0)
    assert score_at(key_of(events, DEFAULTS), NOW, DEFAULTS) == pytest.approx(72.5, rel=1e-12)


def test_the_score_is_capped_at_100_the_total_is_not() -> None:
    events = [ev(CLICK, 0, str(i)) for i in range(12)]
    key = key_of(events, DEFAULTS)
    assert total_at(key, NOW, DEFAULTS) == pytest.approx(120.0, rel=1e-12)
    assert score_at(key, NOW, DEFAULTS) == 100.0
    assert explain(events, NOW, DEFAULTS).score == 100.0


def test_the_kept_key_decays_without_a_write() -> None:
    key = key_of([ev(CLICK, 0)], DEFAULTS)
    assert score_at(key, NOW + 30 * DAY_US, DEFAULTS) == pytest.approx(5.0, rel=1e-12)
    assert score_at(key, NOW + 300 * DAY_US, DEFAULTS) == pytest.approx(10 / 1024, rel=1e-9)
    assert score_at(None, NOW, DEFAULTS) == 0.0


def test_custom_weights_and_half_life() -> None:
    s = DEFAULTS.with_changes(click_weight=4, half_life_days=7, preview_weight=0)
    events = [ev(CLICK, 7), ev(CLICK, 14), ev(PREVIEW, 0)]
    assert explain(events, NOW, s).total == pytest.approx(2.0 + 1.0, rel=1e-12)
    assert score_at(key_of(events, s), NOW, s) == pytest.approx(3.0, rel=1e-12)
    assert len(explain(events, NOW, s).contributions) == 2  # a weight of 0 is no part
    assert key_of([ev(PREVIEW, 0)], s) is None


def test_bands_and_their_bound() -> None:
    assert [band_of(x, DEFAULTS) for x in (100, 8, 7.99, 2, 1.99, 0)] == [
        "engaged", "engaged", "at_risk", "at_risk", "unengaged", "unengaged",
    ]  # fmt: skip
    # One click stays engaged while 10 · 2^(-d/30) >= 8: d <= 30·log2(1.25) ≈ 9.66 days.
    for days, engaged in ((9.6, True), (9.7, False)):
        key = key_of([ev(CLICK, days)], DEFAULTS)
        assert key is not None
        assert (key >= key_for_score(8, NOW, DEFAULTS)) is engaged


@given(
    st.lists(
        st.tuples(st.sampled_from([CLICK, CONVERSION, PREVIEW]), st.floats(0, 400)),
        min_size=1, max_size=30,
    ),
    st.floats(0.5, 99),
)  # fmt: skip
def test_key_bound_agrees_with_the_score(parts: list[tuple[str, float]], bound: float) -> None:
    events = [ev(k, d, str(i)) for i, (k, d) in enumerate(parts)]
    key = key_of(events, DEFAULTS)
    assert key is not None
    total = explain(events, NOW, DEFAULTS).total
    assert total_at(key, NOW, DEFAULTS) == pytest.approx(total, rel=1e-9)
    if abs(total - bound) > 1e-9 * bound:
        assert (key >= key_for_score(bound, NOW, DEFAULTS)) is (total >= bound)


def test_summary_counts_and_times() -> None:
    events = [ev(CLICK, 3), ev(CLICK, 1), ev(PREVIEW, 0.5), ev(CONVERSION, 2)]
    s = summarize(events, DEFAULTS)
    assert (s.clicks, s.conversions, s.previews) == (2, 1, 1)
    assert s.last_click_us == NOW - DAY_US
    assert s.last_conversion_us == NOW - 2 * DAY_US
    assert s.last_event_us == NOW - DAY_US // 2
    assert summarize([], DEFAULTS).key is None


def test_what_counts() -> None:
    assert event_kind("human", True, False) == CLICK
    assert event_kind("suspect", True, False) == CLICK
    assert event_kind(None, True, False) == CLICK
    assert event_kind("human", True, True) is None  # an opt-out link
    assert event_kind("human", False, False) is None  # HEAD
    assert event_kind("scanner", True, False) is None
    assert event_kind("preview", True, False) == PREVIEW
    assert event_kind("preview", False, True) == PREVIEW


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"click_weight": -1}, "click_weight"),
        ({"conversion_weight": 1001}, "conversion_weight"),
        ({"preview_weight": math.nan}, "preview_weight"),
        ({"half_life_days": 0}, "half_life_days"),
        ({"half_life_days": 4000}, "half_life_days"),
        ({"engaged_min": 0}, "engaged_min"),
        ({"engaged_min": 150}, "engaged_min"),
        ({"at_risk_min": 9}, "at_risk_min"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        DEFAULTS.with_changes(**changes)
    assert e.value.field == field


def test_defaults_are_documented_values() -> None:
    assert EngagementSettings() == EngagementSettings(10.0, 30.0, 1.0, 30.0, 8.0, 2.0)
    assert DEFAULTS.with_changes(click_weight=None) == DEFAULTS
