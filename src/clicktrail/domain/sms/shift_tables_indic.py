"""Indian-language national shift tables of 3GPP TS 23.038 Annex A, as data.

Ten languages, each with a locking shift table (Annex A.3.4-A.3.13) and a single shift table
(Annex A.2.4-A.2.13): Bengali, Gujarati, Hindi, Kannada, Malayalam, Oriya, Punjabi, Tamil,
Telugu and Urdu. `shift_tables.py` registers them beside the Turkish, Spanish and Portuguese ones.

Layout. A locking shift table is a 128-character string, position `n` being septet `n`, written
in rows of eight with the position of each row's first septet in the comment. Characters outside
printable ASCII are written as escapes, so combining vowel signs and right-to-left letters cannot
be misread or reordered by an editor. `NO_CHAR` (U+FFFF) marks the escape 0x1B and every
position the standard leaves empty. A single shift table maps position to character, like the
default extension table, and omits the empty positions and the reserved 0x0D (CR2) and 0x1B (SS2).

Checking. Every position of all twenty tables was compared against three transcriptions of the
standard: Android's `GsmAlphabet` (aosp-mirror/platform_frameworks_base,
telephony/java/com/android/internal/telephony/GsmAlphabet.java), Mozilla's RIL constants
(mozilla/gecko-dev, dom/system/gonk/ril_consts.js; laid out like Android's, so perhaps not
independent of it) and the Go library warthog618/sms (encoding/gsm7/charset/<language>/
<language>.go, position-to-rune maps with a reading of their own). They agree everywhere except
the first three positions of the Hindi locking table, see there. Where Android records a
misprint in TS 23.038 V9.1.1 (Kannada locking 0x24, Tamil single 0x24, Telugu single
0x22-0x23) all three carry the corrected character; the comments at those tables say so.

Kept as all three sources have them: every Indian single shift table holds `¡` at both 0x13 and
0x15 and `*` at both 0x0B and 0x18 (an encoder may use either; both cost two septets).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from clicktrail.domain.sms.gsm7 import DEFAULT_EXTENSION

# The part all ten Indian single shift tables share (Annex A.2.4-A.2.13, identical in each):
# ASCII and Latin-1 punctuation at 0x00-0x18, the default extension characters at their usual
# positions, and the Latin capitals A-Z at 0x41-0x5A (the locking tables hold only a-z).
_INDIC_SINGLE_COMMON: Final[Mapping[int, str]] = MappingProxyType(
    {
        **DEFAULT_EXTENSION,
        0x00: "@",
        0x01: "£",
        0x02: "$",
        0x03: "¥",
        0x04: "¿",
        0x05: '"',
        0x06: "¤",
        0x07: "%",
        0x08: "&",
        0x09: "'",
        0x0B: "*",
        0x0C: "+",
        0x0E: "-",
        0x0F: "/",
        0x10: "<",
        0x11: "=",
        0x12: ">",
        0x13: "¡",
        0x15: "¡",
        0x16: "_",
        0x17: "#",
        0x18: "*",
        **{0x41 + i: chr(ord("A") + i) for i in range(26)},
    }
)

# TS 23.038 Annex A.3.4, Bengali National Language Locking Shift Table.
_BENGALI_LOCKING: Final = (
    "\u0981\u0982\u0983\u0985\u0986\u0987\u0988\u0989"  # 0x00
    "\u098a\u098b\n\u098c\uffff\r\uffff\u098f"  # 0x08
    "\u0990\uffff\uffff\u0993\u0994\u0995\u0996\u0997"  # 0x10
    "\u0998\u0999\u099a\uffff\u099b\u099c\u099d\u099e"  # 0x18
    " !\u099f\u09a0\u09a1\u09a2\u09a3\u09a4"  # 0x20
    ")(\u09a5\u09a6,\u09a7.\u09a8"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u09aa\u09ab?"  # 0x38
    "\u09ac\u09ad\u09ae\u09af\u09b0\uffff\u09b2\uffff"  # 0x40
    "\uffff\uffff\u09b6\u09b7\u09b8\u09b9\u09bc\u09bd"  # 0x48
    "\u09be\u09bf\u09c0\u09c1\u09c2\u09c3\u09c4\uffff"  # 0x50
    "\uffff\u09c7\u09c8\uffff\uffff\u09cb\u09cc\u09cd"  # 0x58
    "\u09ceabcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u09d7\u09dc\u09dd\u09f0\u09f1"  # 0x78
)

# TS 23.038 Annex A.3.5, Gujarati National Language Locking Shift Table.
_GUJARATI_LOCKING: Final = (
    "\u0a81\u0a82\u0a83\u0a85\u0a86\u0a87\u0a88\u0a89"  # 0x00
    "\u0a8a\u0a8b\n\u0a8c\u0a8d\r\uffff\u0a8f"  # 0x08
    "\u0a90\u0a91\uffff\u0a93\u0a94\u0a95\u0a96\u0a97"  # 0x10
    "\u0a98\u0a99\u0a9a\uffff\u0a9b\u0a9c\u0a9d\u0a9e"  # 0x18
    " !\u0a9f\u0aa0\u0aa1\u0aa2\u0aa3\u0aa4"  # 0x20
    ")(\u0aa5\u0aa6,\u0aa7.\u0aa8"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0aaa\u0aab?"  # 0x38
    "\u0aac\u0aad\u0aae\u0aaf\u0ab0\uffff\u0ab2\u0ab3"  # 0x40
    "\uffff\u0ab5\u0ab6\u0ab7\u0ab8\u0ab9\u0abc\u0abd"  # 0x48
    "\u0abe\u0abf\u0ac0\u0ac1\u0ac2\u0ac3\u0ac4\u0ac5"  # 0x50
    "\uffff\u0ac7\u0ac8\u0ac9\uffff\u0acb\u0acc\u0acd"  # 0x58
    "\u0ad0abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0ae0\u0ae1\u0ae2\u0ae3\u0af1"  # 0x78
)

# TS 23.038 Annex A.3.6, Hindi National Language Locking Shift Table.
# Sources disagree at 0x00-0x02: Android and Mozilla have the Devanagari signs candrabindu,
# anusvara and visarga (U+0901-U+0903), warthog618/sms the Bengali ones (U+0981-U+0983, the
# first row of the Bengali table). The table is Devanagari throughout, so U+0901-U+0903.
_HINDI_LOCKING: Final = (
    "\u0901\u0902\u0903\u0905\u0906\u0907\u0908\u0909"  # 0x00
    "\u090a\u090b\n\u090c\u090d\r\u090e\u090f"  # 0x08
    "\u0910\u0911\u0912\u0913\u0914\u0915\u0916\u0917"  # 0x10
    "\u0918\u0919\u091a\uffff\u091b\u091c\u091d\u091e"  # 0x18
    " !\u091f\u0920\u0921\u0922\u0923\u0924"  # 0x20
    ")(\u0925\u0926,\u0927.\u0928"  # 0x28
    "01234567"  # 0x30
    "89:;\u0929\u092a\u092b?"  # 0x38
    "\u092c\u092d\u092e\u092f\u0930\u0931\u0932\u0933"  # 0x40
    "\u0934\u0935\u0936\u0937\u0938\u0939\u093c\u093d"  # 0x48
    "\u093e\u093f\u0940\u0941\u0942\u0943\u0944\u0945"  # 0x50
    "\u0946\u0947\u0948\u0949\u094a\u094b\u094c\u094d"  # 0x58
    "\u0950abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0972\u097b\u097c\u097e\u097f"  # 0x78
)

# TS 23.038 Annex A.3.7, Kannada National Language Locking Shift Table.
# 0x24 is U+0CA1 KANNADA LETTER DDA in all three sources. Android notes that TS 23.038 V9.1.1
# prints U+0CAA there, a misprint (it repeats 0x3D and leaves DDA out of the table).
_KANNADA_LOCKING: Final = (
    "\uffff\u0c82\u0c83\u0c85\u0c86\u0c87\u0c88\u0c89"  # 0x00
    "\u0c8a\u0c8b\n\u0c8c\uffff\r\u0c8e\u0c8f"  # 0x08
    "\u0c90\uffff\u0c92\u0c93\u0c94\u0c95\u0c96\u0c97"  # 0x10
    "\u0c98\u0c99\u0c9a\uffff\u0c9b\u0c9c\u0c9d\u0c9e"  # 0x18
    " !\u0c9f\u0ca0\u0ca1\u0ca2\u0ca3\u0ca4"  # 0x20
    ")(\u0ca5\u0ca6,\u0ca7.\u0ca8"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0caa\u0cab?"  # 0x38
    "\u0cac\u0cad\u0cae\u0caf\u0cb0\u0cb1\u0cb2\u0cb3"  # 0x40
    "\uffff\u0cb5\u0cb6\u0cb7\u0cb8\u0cb9\u0cbc\u0cbd"  # 0x48
    "\u0cbe\u0cbf\u0cc0\u0cc1\u0cc2\u0cc3\u0cc4\uffff"  # 0x50
    "\u0cc6\u0cc7\u0cc8\uffff\u0cca\u0ccb\u0ccc\u0ccd"  # 0x58
    "\u0cd5abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0cd6\u0ce0\u0ce1\u0ce2\u0ce3"  # 0x78
)

# TS 23.038 Annex A.3.8, Malayalam National Language Locking Shift Table.
_MALAYALAM_LOCKING: Final = (
    "\uffff\u0d02\u0d03\u0d05\u0d06\u0d07\u0d08\u0d09"  # 0x00
    "\u0d0a\u0d0b\n\u0d0c\uffff\r\u0d0e\u0d0f"  # 0x08
    "\u0d10\uffff\u0d12\u0d13\u0d14\u0d15\u0d16\u0d17"  # 0x10
    "\u0d18\u0d19\u0d1a\uffff\u0d1b\u0d1c\u0d1d\u0d1e"  # 0x18
    " !\u0d1f\u0d20\u0d21\u0d22\u0d23\u0d24"  # 0x20
    ")(\u0d25\u0d26,\u0d27.\u0d28"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0d2a\u0d2b?"  # 0x38
    "\u0d2c\u0d2d\u0d2e\u0d2f\u0d30\u0d31\u0d32\u0d33"  # 0x40
    "\u0d34\u0d35\u0d36\u0d37\u0d38\u0d39\uffff\u0d3d"  # 0x48
    "\u0d3e\u0d3f\u0d40\u0d41\u0d42\u0d43\u0d44\uffff"  # 0x50
    "\u0d46\u0d47\u0d48\uffff\u0d4a\u0d4b\u0d4c\u0d4d"  # 0x58
    "\u0d57abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0d60\u0d61\u0d62\u0d63\u0d79"  # 0x78
)

# TS 23.038 Annex A.3.9, Oriya National Language Locking Shift Table.
_ORIYA_LOCKING: Final = (
    "\u0b01\u0b02\u0b03\u0b05\u0b06\u0b07\u0b08\u0b09"  # 0x00
    "\u0b0a\u0b0b\n\u0b0c\uffff\r\uffff\u0b0f"  # 0x08
    "\u0b10\uffff\uffff\u0b13\u0b14\u0b15\u0b16\u0b17"  # 0x10
    "\u0b18\u0b19\u0b1a\uffff\u0b1b\u0b1c\u0b1d\u0b1e"  # 0x18
    " !\u0b1f\u0b20\u0b21\u0b22\u0b23\u0b24"  # 0x20
    ")(\u0b25\u0b26,\u0b27.\u0b28"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0b2a\u0b2b?"  # 0x38
    "\u0b2c\u0b2d\u0b2e\u0b2f\u0b30\uffff\u0b32\u0b33"  # 0x40
    "\uffff\u0b35\u0b36\u0b37\u0b38\u0b39\u0b3c\u0b3d"  # 0x48
    "\u0b3e\u0b3f\u0b40\u0b41\u0b42\u0b43\u0b44\uffff"  # 0x50
    "\uffff\u0b47\u0b48\uffff\uffff\u0b4b\u0b4c\u0b4d"  # 0x58
    "\u0b56abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0b57\u0b60\u0b61\u0b62\u0b63"  # 0x78
)

# TS 23.038 Annex A.3.10, Punjabi National Language Locking Shift Table.
_PUNJABI_LOCKING: Final = (
    "\u0a01\u0a02\u0a03\u0a05\u0a06\u0a07\u0a08\u0a09"  # 0x00
    "\u0a0a\uffff\n\uffff\uffff\r\uffff\u0a0f"  # 0x08
    "\u0a10\uffff\uffff\u0a13\u0a14\u0a15\u0a16\u0a17"  # 0x10
    "\u0a18\u0a19\u0a1a\uffff\u0a1b\u0a1c\u0a1d\u0a1e"  # 0x18
    " !\u0a1f\u0a20\u0a21\u0a22\u0a23\u0a24"  # 0x20
    ")(\u0a25\u0a26,\u0a27.\u0a28"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0a2a\u0a2b?"  # 0x38
    "\u0a2c\u0a2d\u0a2e\u0a2f\u0a30\uffff\u0a32\u0a33"  # 0x40
    "\uffff\u0a35\u0a36\uffff\u0a38\u0a39\u0a3c\uffff"  # 0x48
    "\u0a3e\u0a3f\u0a40\u0a41\u0a42\uffff\uffff\uffff"  # 0x50
    "\uffff\u0a47\u0a48\uffff\uffff\u0a4b\u0a4c\u0a4d"  # 0x58
    "\u0a51abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0a70\u0a71\u0a72\u0a73\u0a74"  # 0x78
)

# TS 23.038 Annex A.3.11, Tamil National Language Locking Shift Table.
_TAMIL_LOCKING: Final = (
    "\uffff\u0b82\u0b83\u0b85\u0b86\u0b87\u0b88\u0b89"  # 0x00
    "\u0b8a\uffff\n\uffff\uffff\r\u0b8e\u0b8f"  # 0x08
    "\u0b90\uffff\u0b92\u0b93\u0b94\u0b95\uffff\uffff"  # 0x10
    "\uffff\u0b99\u0b9a\uffff\uffff\u0b9c\uffff\u0b9e"  # 0x18
    " !\u0b9f\uffff\uffff\uffff\u0ba3\u0ba4"  # 0x20
    ")(\uffff\uffff,\uffff.\u0ba8"  # 0x28
    "01234567"  # 0x30
    "89:;\u0ba9\u0baa\uffff?"  # 0x38
    "\uffff\uffff\u0bae\u0baf\u0bb0\u0bb1\u0bb2\u0bb3"  # 0x40
    "\u0bb4\u0bb5\u0bb6\u0bb7\u0bb8\u0bb9\uffff\uffff"  # 0x48
    "\u0bbe\u0bbf\u0bc0\u0bc1\u0bc2\uffff\uffff\uffff"  # 0x50
    "\u0bc6\u0bc7\u0bc8\uffff\u0bca\u0bcb\u0bcc\u0bcd"  # 0x58
    "\u0bd0abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0bd7\u0bf0\u0bf1\u0bf2\u0bf9"  # 0x78
)

# TS 23.038 Annex A.3.12, Telugu National Language Locking Shift Table.
_TELUGU_LOCKING: Final = (
    "\u0c01\u0c02\u0c03\u0c05\u0c06\u0c07\u0c08\u0c09"  # 0x00
    "\u0c0a\u0c0b\n\u0c0c\uffff\r\u0c0e\u0c0f"  # 0x08
    "\u0c10\uffff\u0c12\u0c13\u0c14\u0c15\u0c16\u0c17"  # 0x10
    "\u0c18\u0c19\u0c1a\uffff\u0c1b\u0c1c\u0c1d\u0c1e"  # 0x18
    " !\u0c1f\u0c20\u0c21\u0c22\u0c23\u0c24"  # 0x20
    ")(\u0c25\u0c26,\u0c27.\u0c28"  # 0x28
    "01234567"  # 0x30
    "89:;\uffff\u0c2a\u0c2b?"  # 0x38
    "\u0c2c\u0c2d\u0c2e\u0c2f\u0c30\u0c31\u0c32\u0c33"  # 0x40
    "\uffff\u0c35\u0c36\u0c37\u0c38\u0c39\uffff\u0c3d"  # 0x48
    "\u0c3e\u0c3f\u0c40\u0c41\u0c42\u0c43\u0c44\uffff"  # 0x50
    "\u0c46\u0c47\u0c48\uffff\u0c4a\u0c4b\u0c4c\u0c4d"  # 0x58
    "\u0c55abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0c56\u0c60\u0c61\u0c62\u0c63"  # 0x78
)

# TS 23.038 Annex A.3.13, Urdu National Language Locking Shift Table.
_URDU_LOCKING: Final = (
    "\u0627\u0622\u0628\u067b\u0680\u067e\u06a6\u062a"  # 0x00
    "\u06c2\u067f\n\u0679\u067d\r\u067a\u067c"  # 0x08
    "\u062b\u062c\u0681\u0684\u0683\u0685\u0686\u0687"  # 0x10
    "\u062d\u062e\u062f\uffff\u068c\u0688\u0689\u068a"  # 0x18
    " !\u068f\u068d\u0630\u0631\u0691\u0693"  # 0x20
    ")(\u0699\u0632,\u0696.\u0698"  # 0x28
    "01234567"  # 0x30
    "89:;\u069a\u0633\u0634?"  # 0x38
    "\u0635\u0636\u0637\u0638\u0639\u0641\u0642\u06a9"  # 0x40
    "\u06aa\u06ab\u06af\u06b3\u06b1\u0644\u0645\u0646"  # 0x48
    "\u06ba\u06bb\u06bc\u0648\u06c4\u06d5\u06c1\u06be"  # 0x50
    "\u0621\u06cc\u06d0\u06d2\u064d\u0650\u064f\u0657"  # 0x58
    "\u0654abcdefg"  # 0x60
    "hijklmno"  # 0x68
    "pqrstuvw"  # 0x70
    "xyz\u0655\u0651\u0653\u0656\u0670"  # 0x78
)

# TS 23.038 Annex A.2.4, Bengali National Language Single Shift Table.
_BENGALI_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u09e6",  # BENGALI DIGIT ZERO
        0x1A: "\u09e7",  # BENGALI DIGIT ONE
        0x1C: "\u09e8",  # BENGALI DIGIT TWO
        0x1D: "\u09e9",  # BENGALI DIGIT THREE
        0x1E: "\u09ea",  # BENGALI DIGIT FOUR
        0x1F: "\u09eb",  # BENGALI DIGIT FIVE
        0x20: "\u09ec",  # BENGALI DIGIT SIX
        0x21: "\u09ed",  # BENGALI DIGIT SEVEN
        0x22: "\u09ee",  # BENGALI DIGIT EIGHT
        0x23: "\u09ef",  # BENGALI DIGIT NINE
        0x24: "\u09df",  # BENGALI LETTER YYA
        0x25: "\u09e0",  # BENGALI LETTER VOCALIC RR
        0x26: "\u09e1",  # BENGALI LETTER VOCALIC LL
        0x27: "\u09e2",  # BENGALI VOWEL SIGN VOCALIC L
        0x2A: "\u09e3",  # BENGALI VOWEL SIGN VOCALIC LL
        0x2B: "\u09f2",  # BENGALI RUPEE MARK
        0x2C: "\u09f3",  # BENGALI RUPEE SIGN
        0x2D: "\u09f4",  # BENGALI CURRENCY NUMERATOR ONE
        0x2E: "\u09f5",  # BENGALI CURRENCY NUMERATOR TWO
        0x30: "\u09f6",  # BENGALI CURRENCY NUMERATOR THREE
        0x31: "\u09f7",  # BENGALI CURRENCY NUMERATOR FOUR
        0x32: "\u09f8",  # BENGALI CURRENCY NUMERATOR ONE LESS THAN THE DENOMINATOR
        0x33: "\u09f9",  # BENGALI CURRENCY DENOMINATOR SIXTEEN
        0x34: "\u09fa",  # BENGALI ISSHAR
    }
)

# TS 23.038 Annex A.2.5, Gujarati National Language Single Shift Table.
_GUJARATI_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0ae6",  # GUJARATI DIGIT ZERO
        0x1D: "\u0ae7",  # GUJARATI DIGIT ONE
        0x1E: "\u0ae8",  # GUJARATI DIGIT TWO
        0x1F: "\u0ae9",  # GUJARATI DIGIT THREE
        0x20: "\u0aea",  # GUJARATI DIGIT FOUR
        0x21: "\u0aeb",  # GUJARATI DIGIT FIVE
        0x22: "\u0aec",  # GUJARATI DIGIT SIX
        0x23: "\u0aed",  # GUJARATI DIGIT SEVEN
        0x24: "\u0aee",  # GUJARATI DIGIT EIGHT
        0x25: "\u0aef",  # GUJARATI DIGIT NINE
    }
)

# TS 23.038 Annex A.2.6, Hindi National Language Single Shift Table.
_HINDI_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0966",  # DEVANAGARI DIGIT ZERO
        0x1D: "\u0967",  # DEVANAGARI DIGIT ONE
        0x1E: "\u0968",  # DEVANAGARI DIGIT TWO
        0x1F: "\u0969",  # DEVANAGARI DIGIT THREE
        0x20: "\u096a",  # DEVANAGARI DIGIT FOUR
        0x21: "\u096b",  # DEVANAGARI DIGIT FIVE
        0x22: "\u096c",  # DEVANAGARI DIGIT SIX
        0x23: "\u096d",  # DEVANAGARI DIGIT SEVEN
        0x24: "\u096e",  # DEVANAGARI DIGIT EIGHT
        0x25: "\u096f",  # DEVANAGARI DIGIT NINE
        0x26: "\u0951",  # DEVANAGARI STRESS SIGN UDATTA
        0x27: "\u0952",  # DEVANAGARI STRESS SIGN ANUDATTA
        0x2A: "\u0953",  # DEVANAGARI GRAVE ACCENT
        0x2B: "\u0954",  # DEVANAGARI ACUTE ACCENT
        0x2C: "\u0958",  # DEVANAGARI LETTER QA
        0x2D: "\u0959",  # DEVANAGARI LETTER KHHA
        0x2E: "\u095a",  # DEVANAGARI LETTER GHHA
        0x30: "\u095b",  # DEVANAGARI LETTER ZA
        0x31: "\u095c",  # DEVANAGARI LETTER DDDHA
        0x32: "\u095d",  # DEVANAGARI LETTER RHA
        0x33: "\u095e",  # DEVANAGARI LETTER FA
        0x34: "\u095f",  # DEVANAGARI LETTER YYA
        0x35: "\u0960",  # DEVANAGARI LETTER VOCALIC RR
        0x36: "\u0961",  # DEVANAGARI LETTER VOCALIC LL
        0x37: "\u0962",  # DEVANAGARI VOWEL SIGN VOCALIC L
        0x38: "\u0963",  # DEVANAGARI VOWEL SIGN VOCALIC LL
        0x39: "\u0970",  # DEVANAGARI ABBREVIATION SIGN
        0x3A: "\u0971",  # DEVANAGARI SIGN HIGH SPACING DOT
    }
)

# TS 23.038 Annex A.2.7, Kannada National Language Single Shift Table.
_KANNADA_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0ce6",  # KANNADA DIGIT ZERO
        0x1D: "\u0ce7",  # KANNADA DIGIT ONE
        0x1E: "\u0ce8",  # KANNADA DIGIT TWO
        0x1F: "\u0ce9",  # KANNADA DIGIT THREE
        0x20: "\u0cea",  # KANNADA DIGIT FOUR
        0x21: "\u0ceb",  # KANNADA DIGIT FIVE
        0x22: "\u0cec",  # KANNADA DIGIT SIX
        0x23: "\u0ced",  # KANNADA DIGIT SEVEN
        0x24: "\u0cee",  # KANNADA DIGIT EIGHT
        0x25: "\u0cef",  # KANNADA DIGIT NINE
        0x26: "\u0cde",  # KANNADA LETTER FA
        0x27: "\u0cf1",  # KANNADA SIGN JIHVAMULIYA
        0x2A: "\u0cf2",  # KANNADA SIGN UPADHMANIYA
    }
)

# TS 23.038 Annex A.2.8, Malayalam National Language Single Shift Table.
_MALAYALAM_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0d66",  # MALAYALAM DIGIT ZERO
        0x1D: "\u0d67",  # MALAYALAM DIGIT ONE
        0x1E: "\u0d68",  # MALAYALAM DIGIT TWO
        0x1F: "\u0d69",  # MALAYALAM DIGIT THREE
        0x20: "\u0d6a",  # MALAYALAM DIGIT FOUR
        0x21: "\u0d6b",  # MALAYALAM DIGIT FIVE
        0x22: "\u0d6c",  # MALAYALAM DIGIT SIX
        0x23: "\u0d6d",  # MALAYALAM DIGIT SEVEN
        0x24: "\u0d6e",  # MALAYALAM DIGIT EIGHT
        0x25: "\u0d6f",  # MALAYALAM DIGIT NINE
        0x26: "\u0d70",  # MALAYALAM NUMBER TEN
        0x27: "\u0d71",  # MALAYALAM NUMBER ONE HUNDRED
        0x2A: "\u0d72",  # MALAYALAM NUMBER ONE THOUSAND
        0x2B: "\u0d73",  # MALAYALAM FRACTION ONE QUARTER
        0x2C: "\u0d74",  # MALAYALAM FRACTION ONE HALF
        0x2D: "\u0d75",  # MALAYALAM FRACTION THREE QUARTERS
        0x2E: "\u0d7a",  # MALAYALAM LETTER CHILLU NN
        0x30: "\u0d7b",  # MALAYALAM LETTER CHILLU N
        0x31: "\u0d7c",  # MALAYALAM LETTER CHILLU RR
        0x32: "\u0d7d",  # MALAYALAM LETTER CHILLU L
        0x33: "\u0d7e",  # MALAYALAM LETTER CHILLU LL
        0x34: "\u0d7f",  # MALAYALAM LETTER CHILLU K
    }
)

# TS 23.038 Annex A.2.9, Oriya National Language Single Shift Table.
_ORIYA_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0b66",  # ORIYA DIGIT ZERO
        0x1D: "\u0b67",  # ORIYA DIGIT ONE
        0x1E: "\u0b68",  # ORIYA DIGIT TWO
        0x1F: "\u0b69",  # ORIYA DIGIT THREE
        0x20: "\u0b6a",  # ORIYA DIGIT FOUR
        0x21: "\u0b6b",  # ORIYA DIGIT FIVE
        0x22: "\u0b6c",  # ORIYA DIGIT SIX
        0x23: "\u0b6d",  # ORIYA DIGIT SEVEN
        0x24: "\u0b6e",  # ORIYA DIGIT EIGHT
        0x25: "\u0b6f",  # ORIYA DIGIT NINE
        0x26: "\u0b5c",  # ORIYA LETTER RRA
        0x27: "\u0b5d",  # ORIYA LETTER RHA
        0x2A: "\u0b5f",  # ORIYA LETTER YYA
        0x2B: "\u0b70",  # ORIYA ISSHAR
        0x2C: "\u0b71",  # ORIYA LETTER WA
    }
)

# TS 23.038 Annex A.2.10, Punjabi National Language Single Shift Table.
_PUNJABI_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0a66",  # GURMUKHI DIGIT ZERO
        0x1D: "\u0a67",  # GURMUKHI DIGIT ONE
        0x1E: "\u0a68",  # GURMUKHI DIGIT TWO
        0x1F: "\u0a69",  # GURMUKHI DIGIT THREE
        0x20: "\u0a6a",  # GURMUKHI DIGIT FOUR
        0x21: "\u0a6b",  # GURMUKHI DIGIT FIVE
        0x22: "\u0a6c",  # GURMUKHI DIGIT SIX
        0x23: "\u0a6d",  # GURMUKHI DIGIT SEVEN
        0x24: "\u0a6e",  # GURMUKHI DIGIT EIGHT
        0x25: "\u0a6f",  # GURMUKHI DIGIT NINE
        0x26: "\u0a59",  # GURMUKHI LETTER KHHA
        0x27: "\u0a5a",  # GURMUKHI LETTER GHHA
        0x2A: "\u0a5b",  # GURMUKHI LETTER ZA
        0x2B: "\u0a5c",  # GURMUKHI LETTER RRA
        0x2C: "\u0a5e",  # GURMUKHI LETTER FA
        0x2D: "\u0a75",  # GURMUKHI SIGN YAKASH
    }
)

# TS 23.038 Annex A.2.11, Tamil National Language Single Shift Table.
# 0x24 is U+0BEE TAMIL DIGIT EIGHT in all three sources. Android notes that TS 23.038 V9.1.1
# prints U+0BEF there, a misprint (it repeats 0x25, digit nine, and leaves eight out).
_TAMIL_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0964",  # DEVANAGARI DANDA
        0x1A: "\u0965",  # DEVANAGARI DOUBLE DANDA
        0x1C: "\u0be6",  # TAMIL DIGIT ZERO
        0x1D: "\u0be7",  # TAMIL DIGIT ONE
        0x1E: "\u0be8",  # TAMIL DIGIT TWO
        0x1F: "\u0be9",  # TAMIL DIGIT THREE
        0x20: "\u0bea",  # TAMIL DIGIT FOUR
        0x21: "\u0beb",  # TAMIL DIGIT FIVE
        0x22: "\u0bec",  # TAMIL DIGIT SIX
        0x23: "\u0bed",  # TAMIL DIGIT SEVEN
        0x24: "\u0bee",  # TAMIL DIGIT EIGHT
        0x25: "\u0bef",  # TAMIL DIGIT NINE
        0x26: "\u0bf3",  # TAMIL DAY SIGN
        0x27: "\u0bf4",  # TAMIL MONTH SIGN
        0x2A: "\u0bf5",  # TAMIL YEAR SIGN
        0x2B: "\u0bf6",  # TAMIL DEBIT SIGN
        0x2C: "\u0bf7",  # TAMIL CREDIT SIGN
        0x2D: "\u0bf8",  # TAMIL AS ABOVE SIGN
        0x2E: "\u0bfa",  # TAMIL NUMBER SIGN
    }
)

# TS 23.038 Annex A.2.12, Telugu National Language Single Shift Table.
# 0x22-0x23 are U+0C6C-U+0C6D TELUGU DIGIT SIX, SEVEN in all three sources. Android notes that
# TS 23.038 V9.1.1 prints U+06CC-U+06CD (Arabic letters) there, a misprint. It is the one
# Indian single shift table that leaves 0x19-0x1A empty (seven others have the dandas there).
_TELUGU_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x1C: "\u0c66",  # TELUGU DIGIT ZERO
        0x1D: "\u0c67",  # TELUGU DIGIT ONE
        0x1E: "\u0c68",  # TELUGU DIGIT TWO
        0x1F: "\u0c69",  # TELUGU DIGIT THREE
        0x20: "\u0c6a",  # TELUGU DIGIT FOUR
        0x21: "\u0c6b",  # TELUGU DIGIT FIVE
        0x22: "\u0c6c",  # TELUGU DIGIT SIX
        0x23: "\u0c6d",  # TELUGU DIGIT SEVEN
        0x24: "\u0c6e",  # TELUGU DIGIT EIGHT
        0x25: "\u0c6f",  # TELUGU DIGIT NINE
        0x26: "\u0c58",  # TELUGU LETTER TSA
        0x27: "\u0c59",  # TELUGU LETTER DZA
        0x2A: "\u0c78",  # TELUGU FRACTION DIGIT ZERO FOR ODD POWERS OF FOUR
        0x2B: "\u0c79",  # TELUGU FRACTION DIGIT ONE FOR ODD POWERS OF FOUR
        0x2C: "\u0c7a",  # TELUGU FRACTION DIGIT TWO FOR ODD POWERS OF FOUR
        0x2D: "\u0c7b",  # TELUGU FRACTION DIGIT THREE FOR ODD POWERS OF FOUR
        0x2E: "\u0c7c",  # TELUGU FRACTION DIGIT ONE FOR EVEN POWERS OF FOUR
        0x30: "\u0c7d",  # TELUGU FRACTION DIGIT TWO FOR EVEN POWERS OF FOUR
        0x31: "\u0c7e",  # TELUGU FRACTION DIGIT THREE FOR EVEN POWERS OF FOUR
        0x32: "\u0c7f",  # TELUGU SIGN TUUMU
    }
)

# TS 23.038 Annex A.2.13, Urdu National Language Single Shift Table.
_URDU_SINGLE: Final[Mapping[int, str]] = MappingProxyType(
    {
        **_INDIC_SINGLE_COMMON,
        0x19: "\u0600",  # ARABIC NUMBER SIGN
        0x1A: "\u0601",  # ARABIC SIGN SANAH
        0x1C: "\u06f0",  # EXTENDED ARABIC-INDIC DIGIT ZERO
        0x1D: "\u06f1",  # EXTENDED ARABIC-INDIC DIGIT ONE
        0x1E: "\u06f2",  # EXTENDED ARABIC-INDIC DIGIT TWO
        0x1F: "\u06f3",  # EXTENDED ARABIC-INDIC DIGIT THREE
        0x20: "\u06f4",  # EXTENDED ARABIC-INDIC DIGIT FOUR
        0x21: "\u06f5",  # EXTENDED ARABIC-INDIC DIGIT FIVE
        0x22: "\u06f6",  # EXTENDED ARABIC-INDIC DIGIT SIX
        0x23: "\u06f7",  # EXTENDED ARABIC-INDIC DIGIT SEVEN
        0x24: "\u06f8",  # EXTENDED ARABIC-INDIC DIGIT EIGHT
        0x25: "\u06f9",  # EXTENDED ARABIC-INDIC DIGIT NINE
        0x26: "\u060c",  # ARABIC COMMA
        0x27: "\u060d",  # ARABIC DATE SEPARATOR
        0x2A: "\u060e",  # ARABIC POETIC VERSE SIGN
        0x2B: "\u060f",  # ARABIC SIGN MISRA
        0x2C: "\u0610",  # ARABIC SIGN SALLALLAHOU ALAYHE WASSALLAM
        0x2D: "\u0611",  # ARABIC SIGN ALAYHE ASSALLAM
        0x2E: "\u0612",  # ARABIC SIGN RAHMATULLAH ALAYHE
        0x30: "\u0613",  # ARABIC SIGN RADI ALLAHOU ANHU
        0x31: "\u0614",  # ARABIC SIGN TAKHALLUS
        0x32: "\u061b",  # ARABIC SEMICOLON
        0x33: "\u061f",  # ARABIC QUESTION MARK
        0x34: "\u0640",  # ARABIC TATWEEL
        0x35: "\u0652",  # ARABIC SUKUN
        0x36: "\u0658",  # ARABIC MARK NOON GHUNNA
        0x37: "\u066b",  # ARABIC DECIMAL SEPARATOR
        0x38: "\u066c",  # ARABIC THOUSANDS SEPARATOR
        0x39: "\u0672",  # ARABIC LETTER ALEF WITH WAVY HAMZA ABOVE
        0x3A: "\u0673",  # ARABIC LETTER ALEF WITH WAVY HAMZA BELOW
        0x3B: "\u06cd",  # ARABIC LETTER YEH WITH TAIL
        0x3F: "\u06d4",  # ARABIC FULL STOP
    }
)
INDIC_LOCKING_SHIFT_TABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bengali": _BENGALI_LOCKING,
        "gujarati": _GUJARATI_LOCKING,
        "hindi": _HINDI_LOCKING,
        "kannada": _KANNADA_LOCKING,
        "malayalam": _MALAYALAM_LOCKING,
        "oriya": _ORIYA_LOCKING,
        "punjabi": _PUNJABI_LOCKING,
        "tamil": _TAMIL_LOCKING,
        "telugu": _TELUGU_LOCKING,
        "urdu": _URDU_LOCKING,
    }
)

INDIC_SINGLE_SHIFT_TABLES: Final[Mapping[str, Mapping[int, str]]] = MappingProxyType(
    {
        "bengali": _BENGALI_SINGLE,
        "gujarati": _GUJARATI_SINGLE,
        "hindi": _HINDI_SINGLE,
        "kannada": _KANNADA_SINGLE,
        "malayalam": _MALAYALAM_SINGLE,
        "oriya": _ORIYA_SINGLE,
        "punjabi": _PUNJABI_SINGLE,
        "tamil": _TAMIL_SINGLE,
        "telugu": _TELUGU_SINGLE,
        "urdu": _URDU_SINGLE,
    }
)
