"""Extended grapheme clusters (Unicode UAX #29), standard library only.

Used to split UCS-2 messages where a reader sees a boundary: a segment must never end between a
flag's two regional indicators, inside a ZWJ emoji sequence, or between a letter and its
combining marks. `unicodedata` gives general categories but not the Grapheme_Cluster_Break or
Extended_Pictographic properties, so those are derived here. Implemented rules (UAX #29 §3.1.1):
GB3-GB5 (CR LF, controls), GB6-GB8 (Hangul syllables), GB9 (Extend, ZWJ), GB9a (SpacingMark),
GB9b (Prepend), GB9c (Indic conjuncts across a virama, for the six scripts of InCB=Linker),
GB11 (emoji ZWJ sequences), GB12/GB13 (regional indicator pairs), GB999. Properties come from
`unicodedata` (the Unicode version of the running Python) plus the lists below, which are taken
from UAX #29 Table 2 and emoji-data.txt; characters newer than that Unicode version are treated
as unassigned, which only ever produces an extra boundary.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from typing import Final

# Grapheme_Cluster_Break values, as small ints for speed.
_OTHER, _CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI, _PREPEND, _SPACING = range(9)
_L, _V, _T, _LV, _LVT, _PICT = range(9, 15)

# Extended_Pictographic (emoji-data.txt), as sorted inclusive ranges.
_PICT_RANGES: Final = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA),
    (0x231A, 0x231B), (0x2328, 0x2328), (0x2388, 0x2388), (0x23CF, 0x23CF),
    (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB),
    (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
    (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712),
    (0x2714, 0x2714), (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721),
    (0x2728, 0x2728), (0x2733, 0x2734), (0x2744, 0x2744), (0x2747, 0x2747),
    (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757),
    (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
    (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171), (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5), (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A), (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D), (0x1F546, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF), (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip
_PICT_STARTS: Final = tuple(lo for lo, _ in _PICT_RANGES)

# Other_Grapheme_Extend characters of category Mc (so Extend, not SpacingMark), plus the
# halfwidth katakana sound marks (Lm) and ZWNJ; UAX #29 Table 2 "Extend".
_EXTEND_EXTRA: Final = frozenset(
    {0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E}
    | {0x0D57, 0x0DCF, 0x0DDF, 0x1B35, 0x302E, 0x302F, 0x1D165, 0xFF9E, 0xFF9F, 0x200C}
    | set(range(0x1D16E, 0x1D173))
)
# UAX #29 Table 2 "SpacingMark": Mc characters excluded from it, and two Lo characters added.
_NOT_SPACING: Final = frozenset(
    {0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, 0x1083, 0x108F, 0x109A, 0x109B, 0x109C}
    | {0x1A61, 0x1A63, 0x1A64, 0xAA7B, 0xAA7D, 0x11720, 0x11721}
    | set(range(0x1067, 0x106E))
    | set(range(0x1087, 0x108D))
)
_SPACING_EXTRA: Final = frozenset([0x0E33, 0x0EB3])
# Prepended_Concatenation_Mark and Indic_Syllabic_Category Consonant_Preceding_Repha /
# Consonant_Prefixed (UAX #29 Table 2 "Prepend").
_PREPEND_CPS: Final = frozenset(
    {0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD, 0x0D4E, 0x11941, 0x11D46}
    | {0x111C2, 0x111C3, 0x1193F, 0x11A3A}
    | set(range(0x0600, 0x0606))
    | set(range(0x11A84, 0x11A8A))
)

# GB9c (Unicode 15.1): Indic_Conjunct_Break. Linker = the viramas of these six scripts;
# Consonant = their consonant letters (ranges per script, DerivedCoreProperties InCB).
_INCB_LINKERS: Final = frozenset([0x094D, 0x09CD, 0x0ACD, 0x0B4D, 0x0C4D, 0x0D4D])
_INCB_CONSONANT_RANGES: Final = (
    (0x0915, 0x0939), (0x0958, 0x095F), (0x0978, 0x097F),  # Devanagari
    (0x0995, 0x09A8), (0x09AA, 0x09B0), (0x09B2, 0x09B2), (0x09B6, 0x09B9),  # Bengali
    (0x09DC, 0x09DD), (0x09DF, 0x09DF), (0x09F0, 0x09F1),
    (0x0A95, 0x0AA8), (0x0AAA, 0x0AB0), (0x0AB2, 0x0AB3), (0x0AB5, 0x0AB9),  # Gujarati
    (0x0AF9, 0x0AF9),
    (0x0B15, 0x0B28), (0x0B2A, 0x0B30), (0x0B32, 0x0B33), (0x0B35, 0x0B39),  # Oriya
    (0x0B5C, 0x0B5D), (0x0B5F, 0x0B5F), (0x0B71, 0x0B71),
    (0x0C15, 0x0C28), (0x0C2A, 0x0C39), (0x0C58, 0x0C5A),  # Telugu
    (0x0D15, 0x0D3A),  # Malayalam
)  # fmt: skip
_INCB_CONSONANTS: Final = frozenset(
    cp for lo, hi in _INCB_CONSONANT_RANGES for cp in range(lo, hi + 1)
)

_CACHE: dict[str, int] = {}


def _is_pictographic(cp: int) -> bool:
    i = bisect_right(_PICT_STARTS, cp) - 1
    return i >= 0 and cp <= _PICT_RANGES[i][1]


def _classify(ch: str) -> int:
    cp = ord(ch)
    if 0x20 <= cp < 0x7F:  # printable ASCII: by far the most common case
        return _OTHER
    if ch == "\r":
        return _CR
    if ch == "\n":
        return _LF
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or cp in _EXTEND_EXTRA:
        return _EXTEND  # emoji modifiers, tag characters, Other_Grapheme_Extend
    if cp in _PREPEND_CPS:
        return _PREPEND
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me"):
        return _EXTEND
    if cat == "Mc":
        return _EXTEND if cp in _NOT_SPACING else _SPACING
    if cat in ("Cc", "Zl", "Zp", "Cf", "Cs"):
        return _CONTROL
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if cp in _SPACING_EXTRA:
        return _SPACING
    if _is_pictographic(cp):
        return _PICT
    return _OTHER


def _gcb(ch: str) -> int:
    value = _CACHE.get(ch)
    if value is None:
        value = _classify(ch)
        if len(_CACHE) < 65536:  # bounded: the cache must not grow with hostile input
            _CACHE[ch] = value
    return value


def grapheme_boundaries(text: str) -> list[int]:
    """Return the offsets in `text` where an extended grapheme cluster starts, plus `len(text)`.

    An empty text returns `[0]`. Offsets index the Python string (code points).
    """
    n = len(text)
    if n == 0:
        return [0]
    bounds = [0]
    prev = _gcb(text[0])
    ri_run = 1 if prev == _RI else 0  # regional indicators in a row ending at prev (GB12/13)
    # GB11 state: prev closes "ExtPict Extend*" (1) or "ExtPict Extend* ZWJ" (2).
    pict = 1 if prev == _PICT else 0
    # GB9c state: 1 after "Consonant [Extend Linker]*", 2 once that run holds a Linker.
    cp0 = ord(text[0])
    incb = 1 if cp0 in _INCB_CONSONANTS else 0
    for i in range(1, n):
        ch = text[i]
        cur = _gcb(ch)
        cp = ord(ch)
        if prev == _CR and cur == _LF:  # GB3
            brk = False
        elif prev in (_CONTROL, _CR, _LF) or cur in (_CONTROL, _CR, _LF):  # GB4, GB5
            brk = True
        elif (
            (prev == _L and cur in (_L, _V, _LV, _LVT))
            or (prev in (_LV, _V) and cur in (_V, _T))
            or (prev in (_LVT, _T) and cur == _T)
            or cur in (_EXTEND, _ZWJ, _SPACING)
            or prev == _PREPEND
            or (incb == 2 and cp in _INCB_CONSONANTS)
            or (pict == 2 and cur == _PICT)
        ):  # GB6
            brk = False
        elif prev == _RI and cur == _RI:  # GB12, GB13: pair them up from the left
            brk = ri_run % 2 == 0
        else:  # GB999
            brk = True
        if brk:
            bounds.append(i)
        # Update the look-behind states for the next position.
        ri_run = ri_run + 1 if cur == _RI else 0
        if cur == _PICT or (pict == 1 and cur == _EXTEND):
            pict = 1
        elif pict == 1 and cur == _ZWJ:
            pict = 2
        else:
            pict = 0
        if cp in _INCB_CONSONANTS:
            incb = 1
        elif incb and cp in _INCB_LINKERS:
            incb = 2
        elif incb and (cur in (_EXTEND, _ZWJ)):
            pass  # InCB=Extend keeps the run going
        else:
            incb = 0
        prev = cur
    bounds.append(n)
    return bounds


def graphemes(text: str) -> list[str]:
    """Return `text` split into extended grapheme clusters (an empty text gives `[]`)."""
    b = grapheme_boundaries(text)
    return [text[b[k] : b[k + 1]] for k in range(len(b) - 1)]


# Classes that never join with a neighbour of any of these same classes: a text made only of
# them has a boundary between every two code points. (LV/LVT join only with V/T; a pictograph
# only after ZWJ; LF only after CR.)
_ALWAYS_BREAK: Final = frozenset([_OTHER, _PICT, _CONTROL, _LF, _LV, _LVT])


def breaks_everywhere(chars: set[str] | frozenset[str]) -> bool:
    """Return True if a text made of `chars` has a cluster boundary between all code points.

    A cheap test that lets callers skip full segmentation for the common case (Cyrillic,
    Greek, CJK, precomposed Hangul, emoji without modifiers or joiners).
    """
    return all(_gcb(ch) in _ALWAYS_BREAK for ch in chars)
