"""Encoding choice and segmentation of an SMS text (3GPP TS 23.038 / TS 23.040).

The user data of one SM is at most 140 octets (TS 23.040 §9.2.3.16, TP-UDL). A user data header
(UDH) takes octets from it: one octet for its length (UDHL) and 2 + n octets per information
element. With GSM-7 the septets start after the header on a septet boundary (fill bits,
TS 23.040 §9.2.3.24), so a header of `h` octets leaves `(140 - h) * 8 // 7` septets:

    header                                   octets  GSM-7 septets  UCS-2 units
    none                                          0            160           70
    concatenation (8-bit ref, IEI 0x00)           6            153           67
    one shift table (IEI 0x24 or 0x25)            4            155            -
    both shift tables                             7            152            -
    concatenation + one shift table               9            149            -
    concatenation + both shift tables            12            146            -

Splitting is greedy, as handsets do it, and never separates what must stay together: the
escape 0x1B from the extension character it announces (GSM-7), or the halves of a surrogate pair
and the code points of a grapheme cluster (UCS-2). So a text can need one segment more than
`ceil(units / per_segment)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Final

from clicktrail.domain.sms.graphemes import breaks_everywhere, grapheme_boundaries
from clicktrail.domain.sms.gsm7 import DEFAULT_CHARSET, Charset
from clicktrail.domain.sms.shift_tables import charsets_for

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

USER_DATA_OCTETS: Final = 140  # TS 23.040 §9.2.3.16: TP-User-Data is at most 140 octets
UDHL_OCTETS: Final = 1  # TS 23.040 §9.2.3.24: the UDH length octet
CONCAT_IE_OCTETS: Final = 5  # TS 23.040 §9.2.3.24.1: IEI 0x00, length 3, ref, total, sequence
SHIFT_IE_OCTETS: Final = 3  # TS 23.040 §9.2.3.24.15/16: IEI 0x24/0x25, length 1, language id


def header_octets(*, concatenated: bool, shift_ies: int = 0) -> int:
    """Return the UDH size in octets (UDHL included; 0 when there is no header at all)."""
    ies = (CONCAT_IE_OCTETS if concatenated else 0) + SHIFT_IE_OCTETS * shift_ies
    return UDHL_OCTETS + ies if ies else 0


def gsm7_capacity(header: int) -> int:
    """Return the septets left in one SM after a `header`-octet UDH and its fill bits."""
    return (USER_DATA_OCTETS - header) * 8 // 7


def ucs2_capacity(header: int) -> int:
    """Return the UTF-16 code units left in one SM after a `header`-octet UDH."""
    return (USER_DATA_OCTETS - header) // 2


_GSM7_SINGLE: Final = gsm7_capacity(header_octets(concatenated=False))  # 160
_GSM7_MULTI: Final = gsm7_capacity(header_octets(concatenated=True))  # 153
_UCS2_SINGLE: Final = ucs2_capacity(header_octets(concatenated=False))  # 70
_UCS2_MULTI: Final = ucs2_capacity(header_octets(concatenated=True))  # 67

# ASCII characters outside the default alphabet's basic table: controls other than LF/CR, the
# backtick and DEL (not GSM-7 at all) and ^ { } [ ] ~ \ | (extension table, two septets).
_ASCII_NOT_BASIC: Final = re.compile(r"[^\n\r !-Z_a-z]")


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a text costs as SMS.

    `units` are septets (GSM-7) or UTF-16 code units (UCS-2) for the whole text; `limit` is the
    capacity of each segment (the single-message capacity when there is one segment);
    `units_left` is what still fits in the last segment; `parts` are the texts of the segments
    in order (`"".join(parts)` is the text). `locking_shift` / `single_shift` name the national
    language tables used, if any.
    """

    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int
    units_left: int = field(default=0, kw_only=True)
    limit: int = field(default=0, kw_only=True)
    parts: tuple[str, ...] = field(default=(), kw_only=True)
    locking_shift: str | None = field(default=None, kw_only=True)
    single_shift: str | None = field(default=None, kw_only=True)


def analyze(text: str, *, shift_table: str | None = None) -> SmsInfo:
    """Return the encoding, segments, units and parts of `text` as it would be sent.

    GSM-7 when every character is in the default alphabet (or, with `shift_table`, in one of
    that language's national tables: the cheapest of no shift, single shift, locking shift and
    both is chosen, fewer segments first, then fewer header IEs); UCS-2 otherwise. Line breaks
    are counted as given (CRLF is two units). Raises `UnknownShiftTableError` or
    `UnsupportedShiftTableError` for a `shift_table` that is not available.
    """
    if shift_table is None:
        # Fast path: most messages are plain ASCII that fits the basic table.
        if text.isascii() and _ASCII_NOT_BASIC.search(text) is None:
            n = len(text)
            if n <= _GSM7_SINGLE:
                return SmsInfo(
                    GSM7, 1, n, units_left=_GSM7_SINGLE - n, limit=_GSM7_SINGLE, parts=(text,)
                )
            parts = tuple(text[i : i + _GSM7_MULTI] for i in range(0, n, _GSM7_MULTI))
            return SmsInfo(
                GSM7,
                len(parts),
                n,
                units_left=_GSM7_MULTI * len(parts) - n,
                limit=_GSM7_MULTI,
                parts=parts,
            )
        info = _analyze_gsm7(text, DEFAULT_CHARSET)
        return info if info is not None else _analyze_ucs2(text)

    best: tuple[tuple[int, int, int, int], SmsInfo] | None = None
    for rank, charset in enumerate(charsets_for(shift_table)):
        info = _analyze_gsm7(text, charset)
        if info is None:
            continue
        key = (info.segments, charset.shift_ies, -info.units_left, rank)
        if best is None or key < best[0]:
            best = (key, info)
    # No UCS-2 comparison is needed when GSM-7 works: a character costs at most 2 septets, and
    # even the smallest GSM-7 segment (146 septets) holds more than a UCS-2 one (67 units).
    return best[1] if best is not None else _analyze_ucs2(text)


def _analyze_gsm7(text: str, charset: Charset) -> SmsInfo | None:
    """Return the GSM-7 analysis of `text` in `charset`, or None if it cannot be encoded."""
    present = set(text)
    if not present.issubset(charset.chars):
        return None
    doubles = present & charset.double
    units = len(text) + sum(text.count(ch) for ch in doubles)
    ies = charset.shift_ies
    single = gsm7_capacity(header_octets(concatenated=False, shift_ies=ies))
    shifts = {"locking_shift": charset.locking_shift, "single_shift": charset.single_shift}
    if units <= single:
        return SmsInfo(
            GSM7, 1, units, units_left=single - units, limit=single, parts=(text,), **shifts
        )
    multi = gsm7_capacity(header_octets(concatenated=True, shift_ies=ies))
    if not doubles:
        parts = tuple(text[i : i + multi] for i in range(0, len(text), multi))
        left = multi * len(parts) - units
    else:
        # An extension character is the escape plus its septet; both go in the same segment.
        costs = charset.costs
        chunks: list[str] = []
        start = used = 0
        for i, ch in enumerate(text):
            cost = costs[ch]
            if used + cost > multi:
                chunks.append(text[start:i])
                start, used = i, 0
            used += cost
        chunks.append(text[start:])
        parts, left = tuple(chunks), multi - used
    return SmsInfo(GSM7, len(parts), units, units_left=left, limit=multi, parts=parts, **shifts)


def _analyze_ucs2(text: str) -> SmsInfo:
    """Return the UCS-2 analysis of `text` (counted in UTF-16 code units)."""
    astral = bool(text) and max(text) > "\uffff"
    units = len(text) + (sum(1 for ch in text if ch > "\uffff") if astral else 0)
    if units <= _UCS2_SINGLE:
        return SmsInfo(
            UCS2, 1, units, units_left=_UCS2_SINGLE - units, limit=_UCS2_SINGLE, parts=(text,)
        )
    multi = _UCS2_MULTI
    chunks: list[str] = []
    start = used = 0
    if breaks_everywhere(set(text)):
        # Every code point is its own cluster: only surrogate pairs need care.
        if not astral:
            chunks = [text[i : i + multi] for i in range(0, len(text), multi)]
            return SmsInfo(
                UCS2,
                len(chunks),
                units,
                units_left=multi * len(chunks) - units,
                limit=multi,
                parts=tuple(chunks),
            )
        for i, ch in enumerate(text):
            cost = 2 if ch > "\uffff" else 1
            if used + cost > multi:
                chunks.append(text[start:i])
                start, used = i, 0
            used += cost
        chunks.append(text[start:])
        return SmsInfo(
            UCS2, len(chunks), units, units_left=multi - used, limit=multi, parts=tuple(chunks)
        )
    bounds = grapheme_boundaries(text)
    prefix = (
        list(accumulate((2 if ch > "\uffff" else 1 for ch in text), initial=0)) if astral else None
    )
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        size = b - a if prefix is None else prefix[b] - prefix[a]
        if used + size <= multi:
            used += size
            continue
        if used:  # the cluster does not fit: it opens the next segment, whole
            chunks.append(text[start:a])
            start, used = a, 0
        if size <= multi:
            used = size
            continue
        # A single cluster bigger than a segment (e.g. a pile of combining marks) has to be cut;
        # cut between code points, so a surrogate pair still stays together.
        for i in range(a, b):
            cost = 2 if text[i] > "\uffff" else 1
            if used + cost > multi:
                chunks.append(text[start:i])
                start, used = i, 0
            used += cost
    chunks.append(text[start:])
    return SmsInfo(
        UCS2, len(chunks), units, units_left=multi - used, limit=multi, parts=tuple(chunks)
    )
