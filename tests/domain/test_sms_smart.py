"""Smart encoding: look-alike substitution only when it saves segments."""

from __future__ import annotations

import pytest

from clicktrail.domain.sms import (
    GSM7,
    UCS2,
    InvalidSpanError,
    analyze,
    smart_encode,
)
from clicktrail.domain.sms.gsm7 import DEFAULT_CHARSET
from clicktrail.domain.sms.smart import LOOKALIKES

FILL = "Your order has shipped and will arrive tomorrow between 9 and 12 o'clock. "  # 75 GSM


def test_substitutes_when_it_saves_a_segment() -> None:
    text = "Hi “Anna” — " + FILL
    assert analyze(text).segments == 2
    result = smart_encode(text)
    assert result.applied
    assert result.text == 'Hi "Anna" - ' + FILL
    assert (result.before.encoding, result.after.encoding) == (UCS2, GSM7)
    assert (result.before.segments, result.after.segments) == (2, 1)
    assert [(c.start, c.end, c.original, c.replacement) for c in result.changes] == [
        (3, 4, "“", '"'),
        (8, 9, "”", '"'),
        (10, 11, "—", "-"),
    ]
    assert "LEFT DOUBLE QUOTATION MARK" in result.changes[0].reason


def test_not_applied_when_not_cheaper() -> None:
    result = smart_encode("Hi “Anna”")  # one segment either way
    assert not result.applied
    assert result.text == "Hi “Anna”"
    assert result.changes == ()
    assert result.after == result.before


def test_never_applied_when_text_stays_ucs2() -> None:
    text = "Hi “Anna” 😀 " + FILL
    result = smart_encode(text)
    assert not result.applied
    assert result.text == text
    assert result.unencodable == ("😀",)


def test_gsm_text_is_returned_as_is() -> None:
    result = smart_encode(FILL)
    assert result.text == FILL
    assert not result.applied


def test_nfc_first() -> None:
    text = "Man\u0303ana " + FILL  # n + COMBINING TILDE
    result = smart_encode(text)
    assert result.applied
    assert result.text == "Mañana " + FILL
    (change,) = result.changes
    assert (change.start, change.end, change.original, change.replacement) == (
        2,
        4,
        "n\u0303",
        "ñ",
    )
    assert change.reason == "NFC"


def test_ohm_sign_becomes_gsm_omega_by_nfc() -> None:
    result = smart_encode("10 k\u2126 " + FILL)  # OHM SIGN
    assert result.applied
    assert result.text.startswith("10 k\u03a9")  # GREEK CAPITAL LETTER OMEGA, GSM-7 0x15


def test_one_character_never_becomes_many_spaces() -> None:
    text = "a\tb\u00a0c\u2003d\u3000e " + FILL
    result = smart_encode(text)
    assert result.applied
    assert result.text.startswith("a b c d e ")
    assert all(len(c.replacement) <= 1 for c in result.changes if c.replacement.isspace())


def test_invisible_characters_are_dropped() -> None:
    result = smart_encode("pre\u00adfix\u200b \ufeff" + FILL)
    assert result.applied
    assert result.text == "prefix " + FILL


def test_urls_are_never_changed() -> None:
    url = "https://example.com/caf\u00e9\u2013menu"  # an en dash inside a URL path
    text = f"Menu – {url} " + FILL
    result = smart_encode(text)
    assert not result.applied  # the URL keeps its en dash, so the text stays UCS-2
    assert result.unencodable == ("–",)
    text2 = "Menu – https://example.com/menu " + FILL
    result2 = smart_encode(text2)
    assert result2.applied
    assert "https://example.com/menu" in result2.text


def test_protected_spans_are_never_changed() -> None:
    name = "“Bob”"
    text = f"Hi {name}, “welcome” " + FILL
    start = text.index(name)
    result = smart_encode(text, protected=[(start, start + len(name))])
    assert not result.applied  # the personalization value keeps its quotes: still UCS-2
    assert smart_encode(text).applied


def test_invalid_span() -> None:
    with pytest.raises(InvalidSpanError) as err:
        smart_encode("abc’", protected=[(2, 9)])
    assert (err.value.code, err.value.field) == ("invalid_input", "protected")


def test_greek_lookalike_capitals() -> None:
    text = "ΑΘΗΝΑ ΚΑΙ ΠΕΙΡΑΙΑΣ " * 9  # all-caps Greek, all GSM-7 once Latin look-alikes map
    result = smart_encode(text)
    assert result.applied
    assert result.after.encoding == GSM7
    assert "Θ" in result.text and "Π" in result.text and "Σ" in result.text


def test_shift_table_characters_are_kept() -> None:
    text = "Teşekkürler “Ayşe” " + FILL
    result = smart_encode(text, shift_table="tr")
    assert result.applied
    assert "ş" in result.text
    assert result.after.encoding == GSM7


def test_lookalike_table_is_sound() -> None:
    gsm = DEFAULT_CHARSET.chars
    for original, replacement in LOOKALIKES.items():
        assert original not in gsm, original
        assert replacement.count(" ") <= 1
        assert all(ch in gsm or ch == "`" for ch in replacement), (original, replacement)
