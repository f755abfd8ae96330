"""The GSM 7-bit default alphabet and the character sets an SMS can be sent in.

Data, not logic: the tables below are transcribed from 3GPP TS 23.038 clause 6.2.1 (the
default alphabet) and clause 6.2.1.1 (its extension table). Position `n` of a table is the septet
value `n`. A `Charset` is what a message is actually encoded with: a basic table (the default
alphabet, or a national locking shift table) plus an extension table reached through the escape
septet 0x1B (the default extension, or a national single shift table). The national tables live
in `shift_tables.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# Marks a table position that holds no character: the escape (0x1B) in a basic table, and the
# reserved / control positions of an extension table.
NO_CHAR: Final = "\uffff"

# TS 23.038 §6.2.1, "GSM 7 bit default alphabet", read column by column (0x00-0x0F, 0x10-0x1F …).
# 0x1B is ESC, the switch to the extension table, never a character of its own. Note 0x09 is the
# capital `Ç` (the standard's note allows handsets to show it as `ç`, but `ç` cannot be sent).
DEFAULT_ALPHABET: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\uffffÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1, "GSM 7 bit default alphabet extension table". 0x0D (CR2) and 0x1B (SS2)
# are reserved controls, not characters, so they are absent. Each of these costs two septets:
# the escape 0x1B and the position below.
DEFAULT_EXTENSION: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x0A: "\f",
        0x14: "^",
        0x28: "{",
        0x29: "}",
        0x2F: "\\",
        0x3C: "[",
        0x3D: "~",
        0x3E: "]",
        0x40: "|",
        0x65: "€",
    }
)


@dataclass(frozen=True, slots=True)
class Charset:
    """One way to encode GSM-7: a basic table plus an extension (single shift) table.

    `locking_shift` / `single_shift` name the national language tables in use (None means the
    default alphabet / default extension); each costs a 3-octet information element in the user
    data header (TS 23.040 §9.2.3.24.15 and §9.2.3.24.16).
    """

    locking_shift: str | None
    single_shift: str | None
    costs: Mapping[str, int]  # character -> septets (1 in the basic table, 2 via the escape)
    chars: frozenset[str]  # every character this charset can encode
    double: frozenset[str]  # the characters that cost two septets

    @property
    def shift_ies(self) -> int:
        """Return how many national language shift IEs this charset adds to the header."""
        return (self.locking_shift is not None) + (self.single_shift is not None)

    @classmethod
    def from_tables(
        cls,
        basic: str,
        extension: Mapping[int, str],
        *,
        locking_shift: str | None = None,
        single_shift: str | None = None,
    ) -> Charset:
        """Return the charset made of a 128-position `basic` table and an `extension` table.

        A character present in both tables costs one septet: a sender always picks the basic
        table position (TS 23.038 §6.2.1.1 note: the extension is only reached by escape).
        """
        costs: dict[str, int] = {ch: 2 for ch in extension.values() if ch != NO_CHAR}
        costs.update({ch: 1 for ch in basic if ch != NO_CHAR})
        double = frozenset(ch for ch, cost in costs.items() if cost == 2)
        return cls(locking_shift, single_shift, MappingProxyType(costs), frozenset(costs), double)


DEFAULT_CHARSET: Final = Charset.from_tables(DEFAULT_ALPHABET, DEFAULT_EXTENSION)
