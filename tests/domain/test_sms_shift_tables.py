"""National language shift tables (3GPP TS 23.038 Annex A) and their header cost."""

from __future__ import annotations

import pytest

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.sms import (
    GSM7,
    UCS2,
    UnknownShiftTableError,
    UnsupportedShiftTableError,
    analyze,
    supported_languages,
)
from clicktrail.domain.sms.gsm7 import DEFAULT_ALPHABET, DEFAULT_EXTENSION, NO_CHAR
from clicktrail.domain.sms.shift_tables import (
    LANGUAGE_IDS,
    LOCKING_SHIFT_TABLES,
    SINGLE_SHIFT_TABLES,
    resolve_language,
)


def test_default_alphabet_spot_checks() -> None:
    # TS 23.038 §6.2.1, a few positions across the table.
    assert DEFAULT_ALPHABET[0x00] == "@"
    assert DEFAULT_ALPHABET[0x02] == "$"
    assert DEFAULT_ALPHABET[0x09] == "Ç"
    assert DEFAULT_ALPHABET[0x10] == "Δ"
    assert DEFAULT_ALPHABET[0x1B] == NO_CHAR
    assert DEFAULT_ALPHABET[0x24] == "¤"
    assert DEFAULT_ALPHABET[0x40] == "¡"
    assert DEFAULT_ALPHABET[0x60] == "¿"
    assert DEFAULT_ALPHABET[0x7F] == "à"
    assert len(DEFAULT_ALPHABET) == 128
    assert len(set(DEFAULT_ALPHABET)) == 128
    assert DEFAULT_EXTENSION[0x65] == "€"


@pytest.mark.parametrize(
    ("name", "position", "char"),
    [
        ("turkish", 0x04, "€"),
        ("turkish", 0x07, "ı"),
        ("turkish", 0x0B, "Ğ"),
        ("turkish", 0x1C, "Ş"),
        ("turkish", 0x40, "İ"),
        ("turkish", 0x60, "ç"),
        ("portuguese", 0x04, "ê"),
        ("portuguese", 0x12, "ª"),
        ("portuguese", 0x15, "∞"),
        ("portuguese", 0x24, "º"),
        ("portuguese", 0x7D, "`"),
    ],
)
def test_locking_shift_positions(name: str, position: int, char: str) -> None:
    assert LOCKING_SHIFT_TABLES[name][position] == char


def test_tables_are_well_formed() -> None:
    for table in LOCKING_SHIFT_TABLES.values():
        assert len(table) == 128
        assert table[0x1B] == NO_CHAR
        assert table[0x0A] == "\n"
        assert table[0x0D] == "\r"
    for single in SINGLE_SHIFT_TABLES.values():
        assert all(0 <= pos < 128 and pos not in (0x1B, 0x0D) for pos in single)
        # every national single shift table keeps the default extension characters
        assert set(DEFAULT_EXTENSION.items()) <= set(single.items())
    assert "spanish" not in LOCKING_SHIFT_TABLES  # TS 23.038 defines none
    assert LANGUAGE_IDS["turkish"] == 1
    assert LANGUAGE_IDS["urdu"] == 13


def test_language_names_and_codes() -> None:
    assert resolve_language("TR") == "turkish"
    assert resolve_language(" Portuguese ") == "portuguese"
    # Every table of the standard is implemented (the Indian ones: test_sms_shift_tables_indic).
    assert supported_languages()[:3] == ("turkish", "spanish", "portuguese")
    assert len(supported_languages()) == len(LANGUAGE_IDS) == 13
    with pytest.raises(UnknownShiftTableError) as unknown:
        resolve_language("klingon")
    assert unknown.value.code == "invalid_input"
    assert unknown.value.field == "shift_table"
    assert isinstance(unknown.value, InvalidInput)
    assert issubclass(UnsupportedShiftTableError, InvalidInput)


def test_default_alphabet_wins_when_it_suffices() -> None:
    info = analyze("Merhaba", shift_table="tr")
    assert (info.locking_shift, info.single_shift, info.limit) == (None, None, 160)


def test_turkish_single_shift_only() -> None:
    # "è" is in the default alphabet but not the Turkish locking table: single shift only.
    info = analyze("Teşekkürler è", shift_table="turkish")
    assert info.encoding == GSM7
    assert (info.locking_shift, info.single_shift) == (None, "turkish")
    assert info.units == 14  # ş costs two septets
    assert info.limit == 155  # 140 octets - (UDHL + 3-octet IE) = 155 septets


def test_turkish_locking_shift_when_cheaper() -> None:
    text = "Çok güzel, teşekkürler ğ ı ş ç " * 5  # many Turkish letters
    info = analyze(text, shift_table="tr")
    assert info.encoding == GSM7
    assert info.locking_shift == "turkish"
    assert info.units == len(text)  # each Turkish letter one septet


def test_turkish_both_tables() -> None:
    # "è" is only in the default alphabet, so with locking shift it cannot be used...
    assert analyze("ş è", shift_table="tr").single_shift == "turkish"
    # ...and "{" with "ı" many times: locking table for ı, extension still reachable.
    info = analyze("ı{" * 10, shift_table="tr")
    assert info.locking_shift == "turkish"


def test_shift_table_segment_limits() -> None:
    text = "ş" * 100  # 200 septets with single shift
    info = analyze(text, shift_table="tr")
    # locking shift only: 100 septets in one message (155 capacity)
    assert (info.segments, info.units, info.limit) == (1, 100, 155)
    info = analyze("ş" * 160, shift_table="tr")
    assert (info.segments, info.limit) == (2, 149)
    assert [len(p) for p in info.parts] == [149, 11]
    both = analyze("ş{" * 80, shift_table="tr")  # locking for ş, escape for {
    assert (both.locking_shift, both.single_shift) == ("turkish", None)
    assert both.units == 240
    assert (both.segments, both.limit) == (2, 149)


def test_spanish_single_shift() -> None:
    info = analyze("¿Qué tal? Mañana a las 10, ¡canción!", shift_table="es")
    assert info.encoding == GSM7
    assert info.single_shift == "spanish"
    assert info.locking_shift is None
    assert analyze("¿Qué tal? canción").encoding == UCS2  # without the table: ó is not GSM-7


def test_portuguese_both_tables() -> None:
    text = "Promoção: você ganhou à vista! Ação válida até amanhã."
    assert analyze(text).encoding == UCS2
    info = analyze(text, shift_table="pt")
    assert info.encoding == GSM7
    assert info.locking_shift == "portuguese"
    assert info.limit in (152, 155, 160)


def test_text_outside_every_table_is_ucs2() -> None:
    info = analyze("Şahin 😀", shift_table="tr")
    assert info.encoding == UCS2
    assert info.locking_shift is None
