"""Multi-touch models on hand-built paths: every credit computed by hand below (fractions),
the path's order and windows, and properties every model keeps (credits add up to 1)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain import multitouch as mt
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.multitouch import Touch

DAY = mt.DAY_US
H = 7 * DAY  # the default half-life
T = 1_800_000_000_000_000  # the conversion


def touch(channel: str, kind: str, before: int, window: int = 30 * DAY, seq: int = 0) -> Touch:
    return Touch(channel, kind, T - before, f"{channel}-camp", window, seq, ref=(channel, kind))


def credits(touches: list[Touch], half_life: int = H) -> dict[str, list[float]]:
    done = mt.credit_path(T, mt.path(T, touches), half_life)
    return {m: [c.of(m) for c in done] for m in mt.MODELS}


def approx(fractions: list[Fraction]) -> object:
    return pytest.approx([float(f) for f in fractions], rel=1e-15, abs=1e-15)


def test_four_touches_of_three_channels() -> None:
    # Stored out of order; the delivery and the click of one SMS share a microsecond.
    touches = [
        touch("web", "touch", 0),
        touch("sms", "click", 7 * DAY),
        touch("email", "touch", 14 * DAY),
        touch("sms", "delivery", 7 * DAY),
    ]
    p = mt.path(T, touches)
    assert [(t.channel, t.kind) for t in p] == [
        ("email", "touch"), ("sms", "delivery"), ("sms", "click"), ("web", "touch")]  # fmt: skip
    got = credits(touches)
    # linear: a quarter each.
    assert got["linear"] == approx([Fraction(1, 4)] * 4)
    # time decay, half-life 7 days: weights 2^-2, 2^-1, 2^-1, 2^0 = 1/4, 1/2, 1/2, 1 (sum 9/4).
    assert got["time_decay"] == approx([Fraction(1, 9), Fraction(2, 9), Fraction(2, 9),
                                        Fraction(4, 9)])  # fmt: skip
    # 40/20/40: the two in the middle share 1/5.
    assert got["position_based"] == approx([Fraction(2, 5), Fraction(1, 10), Fraction(1, 10),
                                            Fraction(2, 5)])  # fmt: skip
    # last click: the web touch, the last of the path.
    assert got["last_click"] == [0.0, 0.0, 0.0, 1.0]


def test_three_touches_time_decay_and_a_shorter_half_life() -> None:
    touches = [touch("email", "touch", 14 * DAY), touch("sms", "click", 7 * DAY),
               touch("sms", "delivery", 0)]  # fmt: skip
    got = credits(touches)
    # 1/4, 1/2, 1 over 7/4.
    assert got["time_decay"] == approx([Fraction(1, 7), Fraction(2, 7), Fraction(4, 7)])
    assert got["position_based"] == approx([Fraction(2, 5), Fraction(1, 5), Fraction(2, 5)])
    # The last touch is a delivery (a view): last click goes to the SMS click before it.
    assert got["last_click"] == [0.0, 1.0, 0.0]
    # Half-life 3.5 days: weights 2^-4, 2^-2, 1 = 1/16, 4/16, 16/16 (sum 21/16).
    got = credits(touches, half_life=7 * DAY // 2)
    assert got["time_decay"] == approx([Fraction(1, 21), Fraction(4, 21), Fraction(16, 21)])


def test_one_and_two_touches() -> None:
    one = credits([touch("email", "touch", DAY)])
    assert one == {"linear": [1.0], "time_decay": [1.0], "position_based": [1.0],
                   "last_click": [1.0]}  # fmt: skip
    two = credits([touch("email", "touch", 7 * DAY), touch("sms", "click", 0)])
    assert two["linear"] == two["position_based"] == [0.5, 0.5]
    assert two["time_decay"] == approx([Fraction(1, 3), Fraction(2, 3)])  # 1/2 and 1
    assert two["last_click"] == [0.0, 1.0]


def test_deliveries_only_give_no_last_click_credit() -> None:
    got = credits([touch("sms", "delivery", 2 * DAY), touch("sms", "delivery", DAY, seq=1)])
    assert got["last_click"] == [0.0, 0.0]
    assert got["linear"] == [0.5, 0.5]


def test_windows_are_inclusive_and_later_touches_never_count() -> None:
    touches = [
        touch("email", "touch", 5 * DAY, window=5 * DAY),  # exactly at its window: in
        touch("email", "touch", 5 * DAY + 1, window=5 * DAY),  # a microsecond out
        touch("web", "touch", -1),  # after the conversion
        touch("sms", "delivery", 0, window=DAY),  # at the conversion's microsecond: in
    ]
    p = mt.path(T, touches)
    assert [(t.channel, T - t.at_us) for t in p] == [("email", 5 * DAY), ("sms", 0)]
    assert credits([]) == {m: [] for m in mt.MODELS}


def test_a_very_old_touch_does_not_underflow() -> None:
    got = credits([touch("email", "touch", 90 * DAY, window=90 * DAY), touch("web", "touch", 0)],
                  half_life=mt.MIN_HALF_LIFE_US)  # fmt: skip
    assert got["time_decay"][0] >= 0.0 and got["time_decay"][1] == 1.0


def test_half_life_bounds() -> None:
    assert mt.check_half_life(H) == H
    for bad in (mt.MIN_HALF_LIFE_US - 1, mt.MAX_HALF_LIFE_US + 1):
        with pytest.raises(InvalidInput):
            mt.check_half_life(bad)


_touches = st.lists(
    st.builds(
        touch,
        st.sampled_from(["sms", "email", "web"]),
        st.sampled_from(mt.KINDS),
        st.integers(0, 40 * DAY),
        st.integers(1, 60 * DAY),
        st.integers(0, 5),
    ),
    max_size=12,
)


@given(_touches, st.integers(mt.MIN_HALF_LIFE_US, mt.MAX_HALF_LIFE_US))
def test_every_model_adds_up_to_one(touches: list[Touch], half_life: int) -> None:
    got = credits(touches, half_life)
    n = len(got["linear"])
    for model, values in got.items():
        expected = 1.0 if n else 0.0
        if model == "last_click" and not any(t.is_click for t in mt.path(T, touches)):
            expected = 0.0
        assert sum(values) == pytest.approx(expected, abs=1e-12), model
        assert all(v >= 0 for v in values)
