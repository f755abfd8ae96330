"""The rules of one conversion (domain/conversions.py): money in micros, currencies, event
names, times, metadata bounds, dedup keys."""

from __future__ import annotations

import time
from decimal import Decimal

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain import conversions as rules
from clicktrail.domain.errors import InvalidInput
from clicktrail.web.redirect import new_click_id

NOW = 1_790_000_000_000_000


@pytest.mark.parametrize(
    ("raw", "micros"),
    [("12.50", 12_500_000), (19.99, 19_990_000), (0, 0), ("0.000001", 1), (3, 3_000_000),
     (" 7 ", 7_000_000), ("1e3", 1_000_000_000), (None, None), ("", None)],
)  # fmt: skip
def test_values_become_exact_micros(raw: object, micros: int | None) -> None:
    assert rules.value_micros(raw) == micros


@pytest.mark.parametrize(
    "raw", ["-1", "0.0000001", "abc", "NaN", "Infinity", True, [1], "1" + "0" * 13, 1e300]
)
def test_bad_values_are_refused_naming_the_field(raw: object) -> None:
    with pytest.raises(InvalidInput) as e:
        rules.value_micros(raw, "/0/value")
    assert e.value.field == "/0/value"


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_decimal_text_reads_back_as_the_same_micros(amount: Decimal) -> None:
    micros = rules.value_micros(str(amount))
    assert micros is not None
    assert rules.value_micros(rules.decimal_text(micros)) == micros
    assert Decimal(rules.decimal_text(micros)) == amount


def test_money_needs_value_and_currency_together() -> None:
    assert rules.money("5", "usd") == (5_000_000, "USD")
    assert rules.money(None, None) == (None, None)
    for value, currency, field in [("5", None, "currency"), (None, "EUR", "value"),
                                   ("5", "EURO", "currency"), ("5", "XXX", "currency")]:  # fmt: skip
        with pytest.raises(InvalidInput) as e:
            rules.money(value, currency)
        assert e.value.field == field


def test_currencies_are_iso_4217s_current_table() -> None:
    """The domain keeps its own copy (standard library only); it is the table the `iso4217`
    package ships, less XTS (testing) and XXX (no currency). Withdrawn codes are refused with
    the same words as any unknown one."""
    assert {c.code for c in iso4217.Currency} - {"XTS", "XXX"} == rules.CURRENCIES
    assert rules.money("1", "xad") == (1_000_000, "XAD")  # new in 2025
    for withdrawn in ("BGN", "ANG", "CUC", "SLL", "ZWL"):
        with pytest.raises(InvalidInput) as e:
            rules.money("1", withdrawn)
        assert e.value.message == (
            f"currency: {withdrawn!r} is not an ISO 4217 currency code (e.g. USD, EUR)"
        )


def test_event_names() -> None:
    assert rules.event_name(None) == "conversion"
    assert rules.event_name(" Purchase ") == "purchase"
    for bad in ["a b", "x:y", "-a", "a" * 65, 5]:
        with pytest.raises(InvalidInput):
            rules.event_name(bad)


def test_times_in_the_future_or_before_2000_are_refused() -> None:
    assert rules.check_occurred(NOW + rules.MAX_SKEW_US, NOW) == NOW + rules.MAX_SKEW_US
    with pytest.raises(InvalidInput, match="future"):
        rules.check_occurred(NOW + rules.MAX_SKEW_US + 1, NOW)
    with pytest.raises(InvalidInput, match="2000"):
        rules.check_occurred(0, NOW)


def test_metadata_is_flat_and_bounded() -> None:
    assert rules.metadata({"a": "x", "n": 1.5, "b": True, "z": None}) is not None
    for bad in [{"a": {"b": 1}}, {"a": [1]}, {str(i): i for i in range(33)}, {"a": "x" * 257},
                {"": 1}, "text", {f"k{i}": "x" * 250 for i in range(20)}]:  # fmt: skip
        with pytest.raises(InvalidInput):
            rules.metadata(bad)


def test_dedup_keys() -> None:
    key = rules.dedup_key
    assert key("purchase", "o-1", "CID", 7, "ignore", "cnv_a") == "txn:purchase:o-1"
    assert key("purchase", "o-1", None, 7, "count", "cnv_a") == "txn:purchase:o-1"
    assert key("purchase", None, "CID", 7, "ignore", "cnv_a") == "click:purchase:CID"
    assert key("purchase", None, None, 7, "replace", "cnv_a") == "contact:purchase:7"
    assert key("purchase", None, "CID", 7, "count", "cnv_a") == "once:cnv_a"


def test_click_id_time_reads_the_redirects_ids() -> None:
    t = rules.click_id_time_us(new_click_id())
    assert t is not None and abs(t - time.time_ns() // 1000) < 5_000_000
    assert rules.click_id_time_us("not-an-id") is None
