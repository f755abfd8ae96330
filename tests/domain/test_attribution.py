"""Attribution models, windows and metrics (domain/attribution.py): exact credit per scenario."""

from __future__ import annotations

import statistics
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.attribution import (
    DAY_US,
    HOUR_US,
    MINUTE_US,
    AttributionSettings,
    ClickTouch,
    CreditedRow,
    CreditSums,
    Delays,
    Delivery,
    SettingsOverride,
    Windows,
    attribute,
    delay_ranks,
    figures,
    figures_of,
    format_window,
    parse_window,
)
from clicktrail.domain.errors import InvalidInput

T = 1_800_000_000 * 1_000_000  # the conversion's time


def click(
    id: int, at_us: int, campaign: int = 1, *, message: int | None = None, link: int = 10,
    verdict: str | None = "human", final: bool = True, is_click: bool = True,
    optout: bool = False,
) -> ClickTouch:  # fmt: skip
    return ClickTouch(id, f"clk{id}", message or 100 + id, campaign, link, at_us, is_click,
                      verdict, final, optout)  # fmt: skip


def winners(result: object) -> dict[str, tuple[str, int | None, int]]:
    from clicktrail.domain.attribution import Attribution

    assert isinstance(result, Attribution)
    return {c.model: (c.kind, c.click, c.message_id) for c in result.credits}


DEFAULT = Windows()


def test_last_and_first_click_inside_the_default_window() -> None:
    clicks = [click(1, T - 4 * DAY_US), click(2, T - 2 * HOUR_US), click(3, T - 6 * DAY_US)]
    result = attribute(T, clicks, [], lambda _c: DEFAULT)
    assert winners(result) == {
        "last_click": ("click", 2, 102),
        "first_click": ("click", 1, 101),  # click 3 is 6 days old: outside 5 days
        "last_touch": ("click", 2, 102),
    }
    assert all(c.credit == Fraction(1) for c in result.credits)
    assert result.of("last_click") is not None
    assert result.of("last_click").delay_us == 2 * HOUR_US  # type: ignore[union-attr]
    assert result.settled


def test_window_bounds_are_inclusive_and_future_touches_never_count() -> None:
    w = Windows(click_us=HOUR_US, delivery_us=HOUR_US)
    at_edge = attribute(T, [click(1, T - HOUR_US)], [], lambda _c: w)
    assert winners(at_edge)["last_click"] == ("click", 1, 101)
    past_edge = attribute(T, [click(1, T - HOUR_US - 1)], [], lambda _c: w)
    assert winners(past_edge) == {}
    future = attribute(T, [click(1, T + 1)], [Delivery(5, 1, T + 1)], lambda _c: w)
    assert winners(future) == {}
    same_instant = attribute(T, [click(1, T)], [], lambda _c: w)
    assert winners(same_instant)["last_click"] == ("click", 1, 101)


@pytest.mark.parametrize(
    ("window", "expected_last", "expected_first"),
    [("1h", 3, 3), ("24h", 3, 2), ("7d", 3, 1)],
)
def test_presets_decide_which_clicks_are_eligible(
    window: str, expected_last: int, expected_first: int
) -> None:
    clicks = [click(1, T - 6 * DAY_US), click(2, T - 20 * HOUR_US), click(3, T - 30 * MINUTE_US)]
    w = Windows(click_us=parse_window(window, "click_window"))
    r = winners(attribute(T, clicks, [], lambda _c: w))
    assert r["last_click"][1] == expected_last
    assert r["first_click"][1] == expected_first


def test_each_campaign_has_its_own_window() -> None:
    # Campaign 1 keeps 1 hour, campaign 2 seven days: campaign 2's older click wins.
    clicks = [click(1, T - 3 * HOUR_US, campaign=1), click(2, T - 2 * DAY_US, campaign=2)]
    windows = {1: Windows(click_us=HOUR_US), 2: Windows(click_us=7 * DAY_US)}
    r = winners(attribute(T, clicks, [], windows.__getitem__))
    assert r["last_click"] == ("click", 2, 102)
    assert r["first_click"] == ("click", 2, 102)


@pytest.mark.parametrize("verdict", ["preview", "scanner", "automation", "probe"])
def test_bot_verdicts_are_never_attributed(verdict: str) -> None:
    clicks = [click(1, T - DAY_US), click(2, T - HOUR_US, verdict=verdict)]
    r = winners(attribute(T, clicks, [], lambda _c: DEFAULT))
    assert r["last_click"] == ("click", 1, 101)
    only_bot = attribute(T, [click(2, T - HOUR_US, verdict=verdict)], [], lambda _c: DEFAULT)
    assert winners(only_bot) == {}


def test_suspect_and_unclassified_clicks_count_like_the_report() -> None:
    clicks = [click(1, T - DAY_US, verdict="suspect"), click(2, T - HOUR_US, verdict=None,
                                                           final=False)]  # fmt: skip
    r = attribute(T, clicks, [], lambda _c: DEFAULT)
    assert winners(r)["last_click"] == ("click", 2, 102)
    assert winners(r)["first_click"] == ("click", 1, 101)
    assert not r.settled  # click 2 may still become a bot


def test_probes_and_optout_links_never_get_credit() -> None:
    clicks = [
        click(1, T - DAY_US),
        click(2, T - HOUR_US, is_click=False, verdict=None),  # a HEAD not judged yet
        click(3, T - MINUTE_US, optout=True),
    ]
    r = winners(attribute(T, clicks, [], lambda _c: DEFAULT))
    assert r["last_click"] == ("click", 1, 101)


def test_ties_go_to_the_row_stored_last_for_last_and_first_for_first() -> None:
    clicks = [click(7, T - HOUR_US), click(4, T - HOUR_US)]
    r = winners(attribute(T, clicks, [], lambda _c: DEFAULT))
    assert r["last_click"][1] == 7
    assert r["first_click"][1] == 4


def test_view_through_credits_a_delivered_message_without_a_click() -> None:
    deliveries = [Delivery(50, 1, T - 3 * HOUR_US), Delivery(51, 2, T - 20 * HOUR_US)]
    r = attribute(T, [], deliveries, lambda _c: DEFAULT)
    assert winners(r) == {"last_touch": ("view", None, 50)}
    credit = r.of("last_touch")
    assert credit is not None and credit.delay_us == 3 * HOUR_US and credit.link_id is None
    # Outside the 12-hour delivery window: nothing.
    late = attribute(T, [], [Delivery(50, 1, T - 13 * HOUR_US)], lambda _c: DEFAULT)
    assert winners(late) == {}


def test_a_click_beats_a_later_view_in_last_touch() -> None:
    clicks = [click(1, T - 2 * DAY_US, message=60)]
    deliveries = [Delivery(60, 1, T - 2 * DAY_US - MINUTE_US), Delivery(61, 2, T - HOUR_US)]
    r = winners(attribute(T, clicks, deliveries, lambda _c: DEFAULT))
    assert r["last_touch"] == ("click", 1, 60)


def test_a_clicked_message_is_not_a_view_even_when_its_click_is_out_of_window() -> None:
    clicks = [click(1, T - 6 * DAY_US, message=60)]  # clicked, 6 days ago
    deliveries = [Delivery(60, 1, T - 2 * HOUR_US)]  # (a late receipt)
    assert winners(attribute(T, clicks, deliveries, lambda _c: DEFAULT)) == {}


def test_a_bot_fetch_does_not_turn_a_view_into_a_click() -> None:
    clicks = [click(1, T - HOUR_US, message=60, verdict="scanner")]
    deliveries = [Delivery(60, 1, T - 2 * HOUR_US)]
    r = winners(attribute(T, clicks, deliveries, lambda _c: DEFAULT))
    assert r == {"last_touch": ("view", None, 60)}


def test_windows_parse_and_format() -> None:
    assert parse_window("1h", "w") == HOUR_US
    assert parse_window(" 7D ", "w") == 7 * DAY_US
    assert parse_window("90m", "w") == 90 * MINUTE_US
    assert format_window(5 * DAY_US) == "5d"
    assert format_window(12 * HOUR_US) == "12h"
    assert format_window(90 * MINUTE_US) == "90m"
    for bad in ("", "5", "0h", "91d", "1w", "-1h", "1.5h"):
        with pytest.raises(InvalidInput) as e:
            parse_window(bad, "click_window")
        assert e.value.field == "click_window"


def test_settings_resolve_campaign_then_workspace_then_default() -> None:
    assert AttributionSettings.resolve(None).as_dict()["click_window"] == "5d"
    ws = SettingsOverride(model="first_click", delivery_window_us=HOUR_US)
    camp = SettingsOverride(click_window_us=DAY_US)
    s = AttributionSettings.resolve(ws, camp)
    assert (s.model, s.click_window_us, s.delivery_window_us) == ("first_click", DAY_US, HOUR_US)
    assert s.source == ("workspace", "campaign", "workspace")
    assert s.as_dict()["delivery_window"] == "1h"


def test_figures_worked_example() -> None:
    # docs/attribution.md's worked example: 1,000 delivered, 80 unique clickers.
    rows = [
        CreditedRow(10, 1, "click", 1.0, 40.0, "USD", 30 * MINUTE_US),
        CreditedRow(10, 2, "click", 1.0, 60.0, "USD", 2 * HOUR_US),
        CreditedRow(11, 2, "click", 1.0, 20.0, "USD", 26 * HOUR_US),
        CreditedRow(None, 3, "view", 1.0, 80.0, "USD", 3 * HOUR_US),
        CreditedRow(10, 4, "click", 1.0, None, None, 4 * HOUR_US),
    ]
    f = figures(rows, delivered=1000, clickers=80)
    assert f.conversions == 5 and f.click_conversions == 4 and f.view_conversions == 1
    assert f.converters == 4 and f.click_converters == 3
    assert f.conversion_rate == 5 / 1000
    assert f.ctcr == 3 / 80
    [usd] = f.revenue
    assert (usd.currency, usd.revenue, usd.rpm, usd.aov) == ("USD", 200.0, 0.2, 50.0)
    # delays of click credits: 0.5 h, 2 h, 4 h, 26 h
    assert f.time_to_convert.count == 4
    assert f.time_to_convert.median_s == 3 * 3600
    assert f.time_to_convert.p25_s == pytest.approx(1.625 * 3600)


def test_delays_of_few_values() -> None:
    assert Delays.of([]).median_s is None
    assert Delays.of([5 * 1_000_000]).p90_s == 5.0


def reference_delays(delays_us: list[int]) -> tuple[float | None, ...]:
    """What the report computed before issue 16's rewrite: `statistics` over every delay."""
    s = sorted(d / 1_000_000 for d in delays_us)
    if len(s) < 2:
        return (s[0],) * 4 if s else (None,) * 4
    q = statistics.quantiles(s, n=20, method="inclusive")
    return (statistics.median(s), q[4], q[14], q[17])


@given(st.lists(st.integers(0, 90 * 86_400 * 1_000_000), max_size=300))
def test_delays_from_their_ranks_are_statistics_to_the_last_bit(delays: list[int]) -> None:
    d = Delays.of(delays)
    assert (d.median_s, d.p25_s, d.p75_s, d.p90_s) == reference_delays(delays)
    assert d.count == len(delays)
    # Only the ranks `delay_ranks` names are read: the others may be anything.
    s = sorted(delays)
    picked = {r: s[r] for r in delay_ranks(len(s))}
    assert Delays.of_ranks(len(s), picked) == d
    assert len(picked) <= 8


@given(
    st.lists(
        st.tuples(st.sampled_from([10, 11, None]), st.integers(1, 6),
                  st.sampled_from(["click", "view"]), st.sampled_from([0.0, 1.0]),
                  st.sampled_from([None, 19.99, 120.5]), st.sampled_from([None, "USD", "EUR"]),
                  st.integers(0, 10**12)),
        max_size=40,
    )
)  # fmt: skip
def test_figures_of_sums_are_figures_of_rows(rows: list[tuple[Any, ...]]) -> None:
    credited = [CreditedRow(*r) for r in rows]
    sums = CreditSums.of_rows(credited)
    assert figures_of(sums, 100, 7) == figures(credited, 100, 7)
    assert sums.converters == len({r.contact_id for r in credited if r.credit > 0})
