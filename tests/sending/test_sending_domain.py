"""The pure arithmetic of sending: token bucket, retry backoff with jitter, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.sending import QuietHours, TokenBucket, retry_delay

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")


# -- token bucket -------------------------------------------------------------------------------


def test_bucket_lets_a_burst_go_then_one_per_interval() -> None:
    b = TokenBucket(10, now=0.0)
    assert b.take(100, 0.0) == 10  # a full second's worth at once
    assert b.take(1, 0.0) == 0
    assert b.wait(0.0) == pytest.approx(0.1)
    assert b.take(5, 0.1) == 1
    assert b.take(5, 0.35) == 2  # 0.25 s later: 2.5 tokens, 2 whole
    b.give_back(2)
    assert b.take(5, 0.35) == 2


@given(st.floats(0.5, 500), st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_bucket_never_exceeds_burst_plus_rate_times_elapsed(
    rate: float, steps: list[float]
) -> None:
    b = TokenBucket(rate, now=0.0)
    now, taken = 0.0, 0
    for step in steps:
        now += step
        taken += b.take(1000, now)
    assert taken <= b.burst + rate * now + 1e-6


def test_rate_zero_is_no_limit_and_hold_stops_it() -> None:
    b = TokenBucket(0, now=0.0)
    assert b.take(5000, 0.0) == 5000
    assert b.wait(0.0) == 0.0
    b.hold_until(3.0)
    assert b.take(10, 2.9) == 0
    assert b.wait(2.0) == pytest.approx(1.0)
    assert b.take(10, 3.0) == 10


def test_negative_rate_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        TokenBucket(-1)
    assert exc.value.field == "rate"


# -- backoff ------------------------------------------------------------------------------------


@given(st.integers(1, 30), st.floats(0, 1, exclude_max=True))
def test_backoff_doubles_with_equal_jitter_up_to_the_cap(attempt: int, jitter: float) -> None:
    step = min(300.0, 2.0 * 2 ** (attempt - 1))
    d = retry_delay(attempt, jitter, base=2.0, cap=300.0)
    assert step / 2 <= d <= step


def test_backoff_spreads_and_honours_retry_after() -> None:
    assert retry_delay(1, 0.0) == 1.0
    assert retry_delay(1, 0.999) == pytest.approx(2.0, abs=0.01)
    assert retry_delay(3, 0.5) == pytest.approx(6.0)  # step 8: 4 fixed + 4 × 0.5
    assert retry_delay(1, 0.0, retry_after=30) == 30
    assert retry_delay(20, 0.0, cap=300) == 150


# -- quiet hours --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field_error"),
    [("21-08", "expected HH:MM-HH:MM"), ("25:00-08:00", "hours go 00-23"),
     ("21:00-21:00", "same time"), ("", "expected"), ("21:60-08:00", "minutes")],
)  # fmt: skip
def test_bad_quiet_hours_name_the_field(text: str, field_error: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        QuietHours.parse(text)
    assert exc.value.field == "quiet_hours"
    assert field_error in exc.value.message


def test_quiet_span_wraps_midnight_or_not() -> None:
    night = QuietHours.parse("21:00-08:00")
    assert str(night) == "21:00-08:00"
    assert night.is_quiet(time(21, 0)) and night.is_quiet(time(3, 0))
    assert not night.is_quiet(time(8, 0)) and not night.is_quiet(time(20, 59))
    lunch = QuietHours.parse(" 12:00 - 13:30 ")
    assert lunch.is_quiet(time(12, 0)) and not lunch.is_quiet(time(13, 30))


def test_next_allowed_in_one_zone() -> None:
    q = QuietHours.parse("21:00-08:00")
    at = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 22:00 in New York (EST)
    assert q.next_allowed(at, [NY]) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 08:00 EST
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert q.next_allowed(noon, [NY]) == noon


def test_next_allowed_must_hold_in_every_zone_of_the_number() -> None:
    q = QuietHours.parse("21:00-08:00")
    # 15:30 UTC: 10:30 in New York but 07:30 in Los Angeles: wait for LA's 08:00.
    at = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    assert q.next_allowed(at, [NY]) == at
    assert q.next_allowed(at, [NY, LA]) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    # Sending allowed 10 h a day; zones 12 h apart (UTC-10, UTC+2) never share a moment.
    far = [ZoneInfo("Pacific/Honolulu"), ZoneInfo("Europe/Athens")]
    assert QuietHours.parse("18:00-08:00").next_allowed(at, far) is None
    # 13 h a day: 08:00 in Honolulu (18:00 UTC) is 20:00 in Athens, the first shared moment.
    assert q.next_allowed(at, far) == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_next_allowed_across_a_dst_change() -> None:
    q = QuietHours.parse("21:00-08:00")
    # London moves to BST on 2026-03-29 at 01:00 UTC: 08:00 local is then 07:00 UTC.
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert q.next_allowed(at, [LONDON]) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


@given(st.integers(0, 365 * 24 * 4))
def test_next_allowed_is_allowed_and_nothing_earlier_is(quarter_hours: int) -> None:
    q = QuietHours.parse("21:30-07:45")
    zones = [NY, LA, LONDON]
    at = datetime(2026, 1, 1, tzinfo=UTC).replace(minute=0) + quarter_hours * (
        datetime(2026, 1, 1, 0, 15, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)
    )
    found = q.next_allowed(at, zones)
    assert found is not None and found >= at
    assert q.allowed(found, zones)
    # No allowed moment in between (checked every 15 minutes).
    step = datetime(2026, 1, 1, 0, 15, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)
    probe = at
    while probe + step < found:
        probe += step
        assert not q.allowed(probe, zones)
