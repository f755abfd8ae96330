"""National language shift tables of 3GPP TS 23.038 Annex A, as data.

A *locking shift* table replaces the whole default alphabet for the message; a *single shift*
table replaces the default extension table (characters reached through the escape 0x1B). Each
one the message uses is announced by an information element in the user data header: locking
shift IEI 0x25, single shift IEI 0x24, each 3 octets (TS 23.040 §9.2.3.24.15, §9.2.3.24.16).
The language identifiers are those of TS 23.038 §6.2.1.2.4.

Implemented: every table the standard defines. Turkish, Spanish and Portuguese are below; the
ten Indian-language tables (Bengali, Gujarati, Hindi, Kannada, Malayalam, Oriya, Punjabi, Tamil,
Telugu, Urdu; Annex A.2.4-A.2.13 and A.3.4-A.3.13) are in `shift_tables_indic.py`, which says
how they were checked. `resolve_language` keeps raising `UnsupportedShiftTableError` for a
language the standard names but this module has no table for; today there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from clicktrail.domain.sms.errors import UnknownShiftTableError, UnsupportedShiftTableError
from clicktrail.domain.sms.gsm7 import (
    DEFAULT_ALPHABET,
    DEFAULT_CHARSET,
    DEFAULT_EXTENSION,
    NO_CHAR,
    Charset,
)
from clicktrail.domain.sms.shift_tables_indic import (
    INDIC_LOCKING_SHIFT_TABLES,
    INDIC_SINGLE_SHIFT_TABLES,
)

# TS 23.038 §6.2.1.2.4: national language identifier carried in the shift IEs.
LANGUAGE_IDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "turkish": 1,
        "spanish": 2,
        "portuguese": 3,
        "bengali": 4,
        "gujarati": 5,
        "hindi": 6,
        "kannada": 7,
        "malayalam": 8,
        "oriya": 9,
        "punjabi": 10,
        "tamil": 11,
        "telugu": 12,
        "urdu": 13,
    }
)

# ISO 639-1 codes accepted as well as the English names.
_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "tr": "turkish",
        "es": "spanish",
        "pt": "portuguese",
        "bn": "bengali",
        "gu": "gujarati",
        "hi": "hindi",
        "kn": "kannada",
        "ml": "malayalam",
        "or": "oriya",
        "pa": "punjabi",
        "ta": "tamil",
        "te": "telugu",
        "ur": "urdu",
    }
)

# TS 23.038 Annex A.3.1, Turkish National Language Locking Shift Table, column by column. It is
# the default alphabet with 0x04 €, 0x07 ı, 0x0B Ğ, 0x0C ğ, 0x1C Ş, 0x1D ş, 0x40 İ and 0x60 ç.
_TURKISH_LOCKING: Final = (
    "@£$¥€éùıòÇ\nĞğ\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\uffffŞşßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "İABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "çabcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 Annex A.3.3, Portuguese National Language Locking Shift Table, column by column.
# (Annex A.3.2 is void: the standard defines no Spanish locking shift table.)
_PORTUGUESE_LOCKING: Final = (
    "@£$¥êéúíóç\nÔô\rÁá"
    "Δ_ªÇÀ∞^\\€Ó|\uffffÂâÊÉ"
    " !\"#º%&'()*+,-./"
    "0123456789:;<=>?"
    "ÍABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÃÕÚÜ§"
    "~abcdefghijklmno"
    "pqrstuvwxyzãõ`üà"
)

LOCKING_SHIFT_TABLES: Final[Mapping[str, str]] = MappingProxyType(
    {"turkish": _TURKISH_LOCKING, "portuguese": _PORTUGUESE_LOCKING, **INDIC_LOCKING_SHIFT_TABLES}
)

# TS 23.038 Annex A.2.1, Turkish National Language Single Shift Table: the default extension
# plus 0x47 Ğ, 0x49 İ, 0x53 Ş, 0x63 ç, 0x67 ğ, 0x69 ı, 0x73 ş.
_TURKISH_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **DEFAULT_EXTENSION,
        0x47: "Ğ",
        0x49: "İ",
        0x53: "Ş",
        0x63: "ç",
        0x67: "ğ",
        0x69: "ı",
        0x73: "ş",
    }
)

# TS 23.038 Annex A.2.2, Spanish National Language Single Shift Table: the default extension
# plus 0x09 ç, 0x41 Á, 0x49 Í, 0x4F Ó, 0x55 Ú, 0x61 á, 0x69 í, 0x6F ó, 0x75 ú.
_SPANISH_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **DEFAULT_EXTENSION,
        0x09: "ç",
        0x41: "Á",
        0x49: "Í",
        0x4F: "Ó",
        0x55: "Ú",
        0x61: "á",
        0x69: "í",
        0x6F: "ó",
        0x75: "ú",
    }
)

# TS 23.038 Annex A.2.3, Portuguese National Language Single Shift Table.
_PORTUGUESE_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **DEFAULT_EXTENSION,
        0x05: "ê",
        0x09: "ç",
        0x0B: "Ô",
        0x0C: "ô",
        0x0E: "Á",
        0x0F: "á",
        0x12: "Φ",
        0x13: "Γ",
        0x15: "Ω",
        0x16: "Π",
        0x17: "Ψ",
        0x18: "Σ",
        0x19: "Θ",
        0x1F: "Ê",
        0x41: "À",
        0x49: "Í",
        0x4F: "Ó",
        0x55: "Ú",
        0x5B: "Ã",
        0x5C: "Õ",
        0x61: "Â",
        0x69: "í",
        0x6F: "ó",
        0x75: "ú",
        0x7B: "ã",
        0x7C: "õ",
        0x7F: "â",
    }
)

SINGLE_SHIFT_TABLES: Final[Mapping[str, Mapping[int, str]]] = MappingProxyType(
    {
        "turkish": _TURKISH_SINGLE,
        "spanish": _SPANISH_SINGLE,
        "portuguese": _PORTUGUESE_SINGLE,
        **INDIC_SINGLE_SHIFT_TABLES,
    }
)

# Sanity of the data itself, checked at import so a typo can never ship: a locking shift table
# has exactly 128 positions with the escape at 0x1B and no character twice (NO_CHAR aside).
for _name, _table in LOCKING_SHIFT_TABLES.items():
    _chars = _table.replace(NO_CHAR, "")
    if (
        len(_table) != 128 or _table[0x1B] != NO_CHAR or len(set(_chars)) != len(_chars)
    ):  # pragma: no cover - data guard
        raise AssertionError(f"locking shift table {_name!r} is malformed")


def resolve_language(name: str) -> str:
    """Return the canonical language name for `name` (an English name or ISO 639-1 code).

    Raises `UnknownShiftTableError` if TS 23.038 defines no table for it, and
    `UnsupportedShiftTableError` if it does but clicktrail does not ship that table yet.
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LANGUAGE_IDS:
        raise UnknownShiftTableError(name)
    if key not in SINGLE_SHIFT_TABLES and key not in LOCKING_SHIFT_TABLES:
        raise UnsupportedShiftTableError(name)
    return key


def supported_languages() -> tuple[str, ...]:
    """Return the canonical names of the languages whose shift tables are implemented."""
    return tuple(
        name for name in LANGUAGE_IDS if name in SINGLE_SHIFT_TABLES or name in LOCKING_SHIFT_TABLES
    )


def _build_charsets(language: str) -> tuple[Charset, ...]:
    locking = LOCKING_SHIFT_TABLES.get(language)
    single = SINGLE_SHIFT_TABLES.get(language)
    options = [DEFAULT_CHARSET]
    if single is not None:
        options.append(Charset.from_tables(DEFAULT_ALPHABET, single, single_shift=language))
    if locking is not None:
        options.append(Charset.from_tables(locking, DEFAULT_EXTENSION, locking_shift=language))
    if locking is not None and single is not None:
        options.append(
            Charset.from_tables(locking, single, locking_shift=language, single_shift=language)
        )
    return tuple(options)


_CHARSETS: Final[Mapping[str, tuple[Charset, ...]]] = MappingProxyType(
    {language: _build_charsets(language) for language in supported_languages()}
)


def charsets_for(language: str) -> tuple[Charset, ...]:
    """Return the charsets worth trying for `language`, cheapest header first.

    The first is always the default alphabet without any shift IE, then single shift only,
    locking shift only, and both (whichever the language has). Raises like `resolve_language`.
    """
    return _CHARSETS[resolve_language(language)]
