"""Indian-language national shift tables (3GPP TS 23.038 Annex A.2.4-A.2.13, A.3.4-A.3.13).

The spot-checked positions below were read off two transcriptions of the standard (Android's
`GsmAlphabet` and the Go library warthog618/sms) and agree in both, except Hindi 0x00, where
the two differ and the Devanagari sign is kept (see `shift_tables_indic.py`).
"""

from __future__ import annotations

import math

import pytest

from clicktrail.domain.sms import (
    GSM7,
    UCS2,
    UnknownShiftTableError,
    UnsupportedShiftTableError,
    analyze,
    supported_languages,
)
from clicktrail.domain.sms import shift_tables as shift_tables_module
from clicktrail.domain.sms.gsm7 import DEFAULT_EXTENSION, NO_CHAR
from clicktrail.domain.sms.segments import gsm7_capacity, header_octets
from clicktrail.domain.sms.shift_tables import (
    LANGUAGE_IDS,
    LOCKING_SHIFT_TABLES,
    SINGLE_SHIFT_TABLES,
    resolve_language,
)

INDIC = (
    "bengali",
    "gujarati",
    "hindi",
    "kannada",
    "malayalam",
    "oriya",
    "punjabi",
    "tamil",
    "telugu",
    "urdu",
)

# Characters (NO_CHAR aside) in each locking table and entries in each single shift table: the
# standard leaves a different number of positions empty in each.
LOCKING_SIZES = {
    "bengali": 114,
    "gujarati": 120,
    "hindi": 127,
    "kannada": 120,
    "malayalam": 120,
    "oriya": 116,
    "punjabi": 110,
    "tamil": 102,
    "telugu": 120,
    "urdu": 127,
}
SINGLE_SIZES = {
    "bengali": 82,
    "gujarati": 70,
    "hindi": 88,
    "kannada": 73,
    "malayalam": 82,
    "oriya": 75,
    "punjabi": 76,
    "tamil": 77,
    "telugu": 78,
    "urdu": 90,
}


@pytest.mark.parametrize("language", INDIC)
def test_locking_table_shape(language: str) -> None:
    table = LOCKING_SHIFT_TABLES[language]
    assert len(table) == 128
    assert table[0x1B] == NO_CHAR  # the escape to the single shift table
    chars = [ch for ch in table if ch != NO_CHAR]
    assert len(chars) == LOCKING_SIZES[language]
    assert len(set(chars)) == len(chars)  # no character twice
    # What every Indian locking table shares with the default alphabet.
    assert (table[0x0A], table[0x0D], table[0x20], table[0x21]) == ("\n", "\r", " ", "!")
    assert table[0x28:0x2A] == ")("  # sic: the standard swaps the parentheses
    assert (table[0x2C], table[0x2E], table[0x3F]) == (",", ".", "?")
    assert table[0x30:0x3C] == "0123456789:;"
    assert table[0x61:0x7B] == "abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("language", INDIC)
def test_single_shift_table_shape(language: str) -> None:
    single = SINGLE_SHIFT_TABLES[language]
    assert len(single) == SINGLE_SIZES[language]
    assert all(0 <= pos < 128 for pos in single)
    assert 0x1B not in single  # the escape position holds no character
    assert 0x0D not in single  # CR2, reserved
    assert NO_CHAR not in single.values()
    assert set(DEFAULT_EXTENSION.items()) <= set(single.items())
    assert "".join(single[pos] for pos in range(0x41, 0x5B)) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    # No character twice, except the two the standard itself repeats in every Indian table.
    positions: dict[str, list[int]] = {}
    for pos, ch in single.items():
        positions.setdefault(ch, []).append(pos)
    repeated = {ch: sorted(pos) for ch, pos in positions.items() if len(pos) > 1}
    assert repeated == {"¡": [0x13, 0x15], "*": [0x0B, 0x18]}


@pytest.mark.parametrize(
    ("language", "position", "char"),
    [
        ("bengali", 0x00, "\u0981"),  # BENGALI SIGN CANDRABINDU
        ("bengali", 0x0C, NO_CHAR),
        ("bengali", 0x3C, NO_CHAR),
        ("bengali", 0x60, "\u09ce"),  # BENGALI LETTER KHANDA TA
        ("bengali", 0x7F, "\u09f1"),  # BENGALI LETTER RA WITH LOWER DIAGONAL
        ("gujarati", 0x0C, "\u0a8d"),  # GUJARATI VOWEL CANDRA E
        ("gujarati", 0x57, "\u0ac5"),  # GUJARATI VOWEL SIGN CANDRA E
        ("gujarati", 0x60, "\u0ad0"),  # GUJARATI OM
        ("gujarati", 0x7F, "\u0af1"),  # GUJARATI RUPEE SIGN
        ("hindi", 0x00, "\u0901"),  # DEVANAGARI SIGN CANDRABINDU (Android; warthog618: U+0981)
        ("hindi", 0x03, "\u0905"),  # DEVANAGARI LETTER A
        ("hindi", 0x3C, "\u0929"),  # DEVANAGARI LETTER NNNA
        ("hindi", 0x5F, "\u094d"),  # DEVANAGARI SIGN VIRAMA
        ("hindi", 0x60, "\u0950"),  # DEVANAGARI OM
        ("hindi", 0x7F, "\u097f"),  # DEVANAGARI LETTER BBA
        ("kannada", 0x00, NO_CHAR),
        ("kannada", 0x24, "\u0ca1"),  # KANNADA LETTER DDA (V9.1.1 misprints U+0CAA)
        ("kannada", 0x3D, "\u0caa"),  # KANNADA LETTER PA
        ("kannada", 0x7B, "\u0cd6"),  # KANNADA AI LENGTH MARK
        ("malayalam", 0x4E, NO_CHAR),
        ("malayalam", 0x4F, "\u0d3d"),  # MALAYALAM SIGN AVAGRAHA
        ("malayalam", 0x7F, "\u0d79"),  # MALAYALAM DATE MARK
        ("oriya", 0x00, "\u0b01"),  # ORIYA SIGN CANDRABINDU
        ("oriya", 0x60, "\u0b56"),  # ORIYA AI LENGTH MARK
        ("oriya", 0x7F, "\u0b63"),  # ORIYA VOWEL SIGN VOCALIC LL
        ("punjabi", 0x09, NO_CHAR),
        ("punjabi", 0x4E, "\u0a3c"),  # GURMUKHI SIGN NUKTA
        ("punjabi", 0x60, "\u0a51"),  # GURMUKHI SIGN UDAAT
        ("punjabi", 0x7F, "\u0a74"),  # GURMUKHI EK ONKAR
        ("tamil", 0x00, NO_CHAR),
        ("tamil", 0x15, "\u0b95"),  # TAMIL LETTER KA
        ("tamil", 0x2A, NO_CHAR),
        ("tamil", 0x3C, "\u0ba9"),  # TAMIL LETTER NNNA
        ("tamil", 0x7F, "\u0bf9"),  # TAMIL RUPEE SIGN
        ("telugu", 0x00, "\u0c01"),  # TELUGU SIGN CANDRABINDU
        ("telugu", 0x4F, "\u0c3d"),  # TELUGU SIGN AVAGRAHA
        ("telugu", 0x60, "\u0c55"),  # TELUGU LENGTH MARK
        ("urdu", 0x00, "\u0627"),  # ARABIC LETTER ALEF
        ("urdu", 0x08, "\u06c2"),  # ARABIC LETTER HEH GOAL WITH HAMZA ABOVE
        ("urdu", 0x47, "\u06a9"),  # ARABIC LETTER KEHEH
        ("urdu", 0x59, "\u06cc"),  # ARABIC LETTER FARSI YEH
        ("urdu", 0x7F, "\u0670"),  # ARABIC LETTER SUPERSCRIPT ALEF
    ],
)
def test_locking_positions(language: str, position: int, char: str) -> None:
    assert LOCKING_SHIFT_TABLES[language][position] == char


@pytest.mark.parametrize(
    ("language", "position", "char"),
    [
        ("bengali", 0x19, "\u09e6"),  # BENGALI DIGIT ZERO
        ("bengali", 0x24, "\u09df"),  # BENGALI LETTER YYA
        ("bengali", 0x34, "\u09fa"),  # BENGALI ISSHAR
        ("gujarati", 0x19, "\u0964"),  # DEVANAGARI DANDA
        ("gujarati", 0x25, "\u0aef"),  # GUJARATI DIGIT NINE
        ("hindi", 0x1A, "\u0965"),  # DEVANAGARI DOUBLE DANDA
        ("hindi", 0x2C, "\u0958"),  # DEVANAGARI LETTER QA
        ("hindi", 0x3A, "\u0971"),  # DEVANAGARI SIGN HIGH SPACING DOT
        ("kannada", 0x26, "\u0cde"),  # KANNADA LETTER FA
        ("kannada", 0x2A, "\u0cf2"),  # KANNADA SIGN UPADHMANIYA
        ("malayalam", 0x2E, "\u0d7a"),  # MALAYALAM LETTER CHILLU NN
        ("oriya", 0x2C, "\u0b71"),  # ORIYA LETTER WA
        ("punjabi", 0x2D, "\u0a75"),  # GURMUKHI SIGN YAKASH
        ("tamil", 0x24, "\u0bee"),  # TAMIL DIGIT EIGHT (V9.1.1 misprints U+0BEF)
        ("tamil", 0x2E, "\u0bfa"),  # TAMIL NUMBER SIGN
        ("telugu", 0x22, "\u0c6c"),  # TELUGU DIGIT SIX (V9.1.1 misprints U+06CC)
        ("telugu", 0x32, "\u0c7f"),  # TELUGU SIGN TUUMU
        ("urdu", 0x19, "\u0600"),  # ARABIC NUMBER SIGN
        ("urdu", 0x3F, "\u06d4"),  # ARABIC FULL STOP
        ("urdu", 0x65, "€"),
    ],
)
def test_single_shift_positions(language: str, position: int, char: str) -> None:
    assert SINGLE_SHIFT_TABLES[language][position] == char


def test_telugu_single_shift_has_no_danda() -> None:
    # The one Indian single shift table that leaves 0x19-0x1A empty.
    assert 0x19 not in SINGLE_SHIFT_TABLES["telugu"]
    assert 0x1A not in SINGLE_SHIFT_TABLES["telugu"]


def test_every_language_is_supported() -> None:
    assert supported_languages() == tuple(LANGUAGE_IDS)
    assert [LANGUAGE_IDS[name] for name in INDIC] == list(range(4, 14))
    assert resolve_language("HI") == "hindi"
    assert resolve_language(" Tamil ") == "tamil"
    assert resolve_language("ur") == "urdu"


def test_unknown_language_still_raises() -> None:
    with pytest.raises(UnknownShiftTableError):
        analyze("नमस्ते", shift_table="sanskrit")
    with pytest.raises(UnknownShiftTableError):
        analyze("x", shift_table="xx")


def test_a_standard_language_without_tables_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        shift_tables_module,
        "SINGLE_SHIFT_TABLES",
        {k: v for k, v in SINGLE_SHIFT_TABLES.items() if k != "hindi"},
    )
    monkeypatch.setattr(
        shift_tables_module,
        "LOCKING_SHIFT_TABLES",
        {k: v for k, v in LOCKING_SHIFT_TABLES.items() if k != "hindi"},
    )
    with pytest.raises(UnsupportedShiftTableError):
        resolve_language("hi")


# Header arithmetic (TS 23.040 §9.2.3.24): UDHL + one 3-octet IE per shift table (+ 5 octets of
# concatenation IE when split), and the septets left after the fill bits.
BOTH_SINGLE = gsm7_capacity(header_octets(concatenated=False, shift_ies=2))
BOTH_MULTI = gsm7_capacity(header_octets(concatenated=True, shift_ies=2))
ONE_SINGLE = gsm7_capacity(header_octets(concatenated=False, shift_ies=1))
ONE_MULTI = gsm7_capacity(header_octets(concatenated=True, shift_ies=1))


def test_header_arithmetic() -> None:
    assert (BOTH_SINGLE, BOTH_MULTI, ONE_SINGLE, ONE_MULTI) == (152, 146, 155, 149)


HINDI = "नमस्ते, आपका ऑर्डर भेज दिया गया है। धन्यवाद।"


def test_hindi_fits_gsm7_with_both_tables() -> None:
    assert analyze(HINDI).encoding == UCS2
    info = analyze(HINDI, shift_table="hi")
    assert info.encoding == GSM7
    # Devanagari letters and signs from the locking table, the danda from the single shift one.
    assert (info.locking_shift, info.single_shift) == ("hindi", "hindi")
    assert info.units == len(HINDI) + HINDI.count("।")  # a danda is escape + septet
    assert (info.segments, info.limit) == (1, BOTH_SINGLE)
    assert info.units_left == BOTH_SINGLE - info.units


def test_hindi_long_text_segments() -> None:
    text = (HINDI + " ") * 8
    units = len(text) + text.count("।")
    ucs2 = analyze(text)
    info = analyze(text, shift_table="hindi")
    assert (info.encoding, info.locking_shift, info.single_shift) == (GSM7, "hindi", "hindi")
    assert info.units == units
    assert info.limit == BOTH_MULTI
    assert info.segments == math.ceil(units / BOTH_MULTI) == 3
    assert ucs2.segments == 6  # the same text as UCS-2: twice the bill
    assert "".join(info.parts) == text


def test_hindi_locking_only_when_no_single_shift_character() -> None:
    info = analyze("नमस्ते, आपका ऑर्डर भेज दिया गया है", shift_table="hindi")
    assert (info.locking_shift, info.single_shift, info.limit) == ("hindi", None, ONE_SINGLE)


TAMIL = "வணக்கம்! உங்கள் ஆர்டர் அனுப்பப்பட்டது. நன்றி."


def test_tamil_fits_gsm7_with_the_locking_table() -> None:
    assert analyze(TAMIL).encoding == UCS2
    info = analyze(TAMIL, shift_table="ta")
    assert (info.encoding, info.locking_shift, info.single_shift) == (GSM7, "tamil", None)
    assert info.units == len(TAMIL)
    assert (info.segments, info.limit) == (1, ONE_SINGLE)


def test_tamil_digits_need_the_single_shift_table() -> None:
    text = TAMIL + " ௧௨௩"  # Tamil digits one, two, three: single shift 0x1D-0x1F
    info = analyze(text, shift_table="tamil")
    assert (info.locking_shift, info.single_shift) == ("tamil", "tamil")
    assert info.units == len(text) + 3
    assert info.limit == BOTH_SINGLE
    long = analyze(TAMIL * 6, shift_table="tamil")
    assert (long.segments, long.limit) == (math.ceil(len(TAMIL) * 6 / ONE_MULTI), ONE_MULTI)


URDU = "آپ کا آرڈر بھیج دیا گیا ہے۔ شکریہ"


def test_urdu_fits_gsm7_with_both_tables() -> None:
    assert analyze(URDU).encoding == UCS2
    info = analyze(URDU, shift_table="urdu")
    assert info.encoding == GSM7
    # Urdu letters from the locking table, the Urdu full stop from the single shift one.
    assert (info.locking_shift, info.single_shift) == ("urdu", "urdu")
    assert info.units == len(URDU) + URDU.count("۔")
    assert (info.segments, info.limit) == (1, BOTH_SINGLE)


def test_urdu_long_text_segments() -> None:
    text = (URDU + " ") * 6
    units = len(text) + text.count("۔")
    info = analyze(text, shift_table="ur")
    assert (info.encoding, info.limit) == (GSM7, BOTH_MULTI)
    assert info.segments == math.ceil(units / BOTH_MULTI)
    assert info.segments < analyze(text).segments


def test_latin_capitals_reach_through_the_single_shift_table() -> None:
    # Indian locking tables hold a-z only; A-Z cost two septets each via the single shift table.
    info = analyze("OTP 4821 आपका कोड है", shift_table="hindi")
    assert (info.locking_shift, info.single_shift) == ("hindi", "hindi")
    assert info.units == len("OTP 4821 आपका कोड है") + 3


def test_text_outside_the_tables_stays_ucs2() -> None:
    info = analyze("नमस्ते 😀", shift_table="hindi")
    assert info.encoding == UCS2
    assert info.locking_shift is None
