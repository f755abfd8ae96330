"""Encoding choice and segment boundaries (3GPP TS 23.038 §6.2.1, TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import pytest

from clicktrail.domain.sms import GSM7, UCS2, SmsInfo, analyze
from clicktrail.domain.sms.segments import gsm7_capacity, header_octets, ucs2_capacity


def test_existing_interface_is_kept() -> None:
    info = analyze("hello")
    assert isinstance(info, SmsInfo)
    assert (info.encoding, info.segments, info.units) == ("GSM-7", 1, 5)
    assert SmsInfo("GSM-7", 1, 5).units_left == 0  # new fields have defaults


@pytest.mark.parametrize(
    ("header", "concatenated", "shift_ies", "septets", "ucs2_units"),
    [
        (0, False, 0, 160, 70),
        (6, True, 0, 153, 67),
        (4, False, 1, 155, 68),
        (7, False, 2, 152, 66),
        (9, True, 1, 149, 65),
        (12, True, 2, 146, 64),
    ],
)
def test_capacity_follows_header_size_and_fill_bits(
    header: int, concatenated: bool, shift_ies: int, septets: int, ucs2_units: int
) -> None:
    assert header_octets(concatenated=concatenated, shift_ies=shift_ies) == header
    assert gsm7_capacity(header) == septets
    assert ucs2_capacity(header) == ucs2_units


@pytest.mark.parametrize(
    ("length", "segments", "units_left", "last_part"),
    [
        (0, 1, 160, 0),
        (1, 1, 159, 1),
        (153, 1, 7, 153),
        (160, 1, 0, 160),
        (161, 2, 145, 8),
        (306, 2, 0, 153),
        (307, 3, 152, 1),
        (459, 3, 0, 153),
        (460, 4, 152, 1),
    ],
)
def test_gsm7_boundaries(length: int, segments: int, units_left: int, last_part: int) -> None:
    for text in ("a" * length, "é" * length):  # the ASCII fast path and the general path
        info = analyze(text)
        assert info.encoding == GSM7
        assert (info.segments, info.units, info.units_left) == (segments, length, units_left)
        assert len(info.parts) == segments
        assert len(info.parts[-1]) == last_part
        assert "".join(info.parts) == text


@pytest.mark.parametrize(
    ("length", "segments", "units_left"),
    [(67, 1, 3), (69, 1, 1), (70, 1, 0), (71, 2, 63), (134, 2, 0), (135, 3, 66), (201, 3, 0)],
)
def test_ucs2_boundaries(length: int, segments: int, units_left: int) -> None:
    for text in ("ж" * length, "\u0301" + "ж" * (length - 1)):  # simple and general paths
        info = analyze(text)
        assert info.encoding == UCS2
        assert (info.segments, info.units, info.units_left) == (segments, length, units_left)
        assert "".join(info.parts) == text


def test_limit_is_single_or_concatenated_capacity() -> None:
    assert analyze("a").limit == 160
    assert analyze("a" * 161).limit == 153
    assert analyze("ж").limit == 70
    assert analyze("ж" * 71).limit == 67


@pytest.mark.parametrize("ch", [*"^{}[]~\\|€", "\f"])
def test_extension_characters_cost_two_septets(ch: str) -> None:
    info = analyze(f"a{ch}b")
    assert (info.encoding, info.units) == (GSM7, 4)


def test_extension_character_fills_single_message_exactly() -> None:
    assert analyze("a" * 158 + "€").segments == 1
    assert analyze("a" * 159 + "€").segments == 2


def test_escape_pair_never_straddles_a_boundary() -> None:
    # 152 septets + "€" (2) = 154 > 153: the euro moves whole to part 2.
    text = "a" * 152 + "€" + "b" * 100
    info = analyze(text)
    assert info.units == 254
    assert info.parts[0] == "a" * 152
    assert info.parts[1].startswith("€")
    # ceil(306 / 153) == 2, but the escape pair on the boundary forces a third segment.
    text = "a" * 152 + "{" + "b" * 152
    info = analyze(text)
    assert info.units == 306
    assert info.segments == 3
    assert info.parts == ("a" * 152, "{" + "b" * 151, "b")  # 152, 153, 1 septets
    assert info.units_left == 152


def test_surrogate_pair_never_straddles_a_boundary() -> None:
    text = "x" * 66 + "😀" + "y" * 10  # 78 units; the emoji would occupy units 67 and 68
    info = analyze(text)
    assert info.units == 78
    assert info.parts == ("x" * 66, "😀" + "y" * 10)
    # 134 units exactly, yet the pair on the boundary adds a third segment.
    text = "x" * 66 + "😀" + "y" * 66
    info = analyze(text)
    assert (info.units, info.segments) == (134, 3)


def test_emoji_count_two_units() -> None:
    assert analyze("😀" * 35).units == 70
    assert analyze("😀" * 35).segments == 1
    assert analyze("😀" * 36).segments == 2


@pytest.mark.parametrize(
    "cluster",
    [
        "🇫🇷",  # flag: regional indicator pair
        "👨\u200d👩\u200d👧\u200d👦",  # ZWJ family
        "👍🏽",  # emoji modifier
        "❤️",  # variation selector
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # tag sequence
        "e\u0301\u0323",  # combining marks
        "क्ष",  # Devanagari conjunct (GB9c)
        "\u1100\u1161\u11a8",  # Hangul jamo L V T
    ],
)
def test_grapheme_cluster_never_straddles_a_boundary(cluster: str) -> None:
    for prefix_len in range(60, 68):
        text = "x" * prefix_len + cluster + "y" * 20
        info = analyze(text)
        assert info.encoding == UCS2
        assert "".join(info.parts) == text
        assert any(cluster in part for part in info.parts), (prefix_len, info.parts)


def test_oversized_cluster_is_cut_between_code_points() -> None:
    text = "a" + "\u0301" * 100  # one cluster of 101 units: must be cut somewhere
    info = analyze(text)
    assert "".join(info.parts) == text
    assert all(len(p) <= 67 for p in info.parts)


def test_line_breaks_count_as_sent() -> None:
    assert analyze("a\r\nb").units == 4
    assert analyze("a\nb").units == 3
    assert analyze("a\rb").units == 3


@pytest.mark.parametrize("ch", ["á", "ç", "Α", "`", "\t", "\x1b", "\u00a0", "’"])
def test_characters_that_look_gsm_but_are_not(ch: str) -> None:
    assert analyze(f"abc{ch}").encoding == UCS2


@pytest.mark.parametrize("ch", list("ΔΦΓΛΩΠΨΣΘΞ") + list("ÇÉÄÖÑÜÅÆØßàèéìòùäöñüåæø¿¡§¤£¥$@_"))
def test_characters_that_are_gsm(ch: str) -> None:
    info = analyze(f"abc{ch}")
    assert (info.encoding, info.units) == (GSM7, 4)


def test_greek_capital_alpha_is_not_latin_a() -> None:
    assert analyze("\u0391").encoding == UCS2  # GREEK CAPITAL LETTER ALPHA
    assert analyze("\u0394").encoding == GSM7  # GREEK CAPITAL LETTER DELTA
    assert analyze("\u2206").encoding == UCS2  # INCREMENT, which looks the same


def test_tracking_a_link_costs_its_length() -> None:
    body = "Hi Anna, your order has shipped. Track it: "
    long_url = "https://shop.example.com/orders/4521/tracking?utm_source=sms&utm_campaign=spring"
    short = "https://ct.example/AbC123"
    assert analyze(body + long_url).units == len(body) + len(long_url)
    assert analyze(body + short).units == 68
