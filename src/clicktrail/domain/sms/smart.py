"""Smart encoding: replace look-alike characters that force UCS-2 by GSM-7 ones.

One typographic quote or a non-breaking space pasted from a word processor turns a whole
message into UCS-2: 70 instead of 160 characters per SMS. Smart encoding undoes that, and is
careful where common implementations are not:

- it normalizes to NFC first, so `n` + COMBINING TILDE becomes the GSM-7 `ñ`, and the OHM SIGN
  becomes the GSM-7 capital omega;
- it substitutes only when the result is GSM-7 *and* takes fewer segments: a text that stays
  UCS-2 (an emoji, a Chinese name) or would cost the same is returned untouched;
- a character becomes at most one space (a tab is one space, never four), and invisible
  characters (zero-width space, soft hyphen, byte order mark) are dropped;
- it never touches a URL (found with `find_urls`) nor any protected span the caller passes,
  such as a personalization value;
- every change is reported: where, what, into what, and why.

With a national language (`shift_table`), characters that language's tables can encode are kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from clicktrail.domain.sms.errors import InvalidSpanError
from clicktrail.domain.sms.graphemes import grapheme_boundaries
from clicktrail.domain.sms.gsm7 import DEFAULT_CHARSET
from clicktrail.domain.sms.segments import GSM7, SmsInfo, analyze
from clicktrail.domain.sms.shift_tables import charsets_for
from clicktrail.domain.urls import find_urls


def _lookalikes() -> dict[str, str]:
    table: dict[str, str] = {}

    def put(chars: str, replacement: str) -> None:
        for ch in chars:
            table[ch] = replacement

    # Single quotes, primes, modifier-letter apostrophes, backtick and acute accent.
    put(
        "\u2018\u2019\u201a\u201b\u2032\u2035\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb`\u00b4", "'"
    )
    # Double quotes, double primes and guillemets.
    put("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u02ba\u02dd\u02ee", '"')
    put("\u2039", "<")  # single guillemets look like angle brackets
    put("\u203a", ">")
    # Hyphens, dashes and the minus sign.
    put("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63", "-")
    # Unusual spaces: each becomes exactly one space. TAB included: never several spaces.
    put("\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " ")
    put("\u202f\u205f\u3000", " ")
    # Invisible characters carry nothing a reader sees.
    put("\u200b\u2060\ufeff\u00ad", "")
    # Line and paragraph separators and NEXT LINE are line breaks.
    put("\u2028\u2029\u0085", "\n")
    put("\u2026", "...")  # HORIZONTAL ELLIPSIS
    put("\u2024", ".")  # ONE DOT LEADER
    put("\u2044\u2215", "/")  # FRACTION SLASH, DIVISION SLASH
    put("\u2217\u204e", "*")  # ASTERISK OPERATOR, LOW ASTERISK
    put("\u2236", ":")  # RATIO
    put("\u02c6", "^")  # MODIFIER LETTER CIRCUMFLEX ACCENT
    put("\u02dc", "~")  # SMALL TILDE
    put("\u2206", "Δ")  # INCREMENT looks exactly like the GSM-7 GREEK CAPITAL LETTER DELTA
    # Greek capitals identical in shape to Latin ones (Greek all-caps SMS practice).
    for greek, latin in zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True):
        table[greek] = latin
    # Fullwidth ASCII variants (U+FF01-U+FF5E) are the ASCII characters U+0021-U+007E.
    for cp in range(0xFF01, 0xFF5F):
        table[chr(cp)] = chr(cp - 0xFEE0)
    return table


LOOKALIKES: Final[Mapping[str, str]] = MappingProxyType(_lookalikes())


@dataclass(frozen=True, slots=True)
class Substitution:
    """One change: `original` at `start:end` of the original text became `replacement`."""

    start: int
    end: int
    original: str
    replacement: str
    reason: str  # e.g. "U+201C LEFT DOUBLE QUOTATION MARK -> '\"'", or "NFC"


@dataclass(frozen=True, slots=True)
class SmartEncoding:
    """The outcome of smart encoding.

    `text` is what to send: the substituted text when `applied`, else the original. `changes`
    lists the substitutions made (empty when not applied). `before` / `after` analyze the
    original text and `text`. `unencodable` lists, in order of appearance, the characters that
    keep the text UCS-2 even after substitution (empty when it could become GSM-7).
    """

    text: str
    applied: bool
    changes: tuple[Substitution, ...]
    before: SmsInfo
    after: SmsInfo
    unencodable: tuple[str, ...]


def smart_encode(
    text: str,
    *,
    protected: Iterable[tuple[int, int]] = (),
    shift_table: str | None = None,
) -> SmartEncoding:
    """Return `text` with look-alike characters replaced, if that saves segments.

    `protected` are (start, end) spans of `text` that must stay as they are (personalization
    values); URLs found by `find_urls` are protected automatically. Raises `InvalidSpanError`
    for a span outside the text, and the shift table errors of `analyze` for `shift_table`.
    """
    before = analyze(text, shift_table=shift_table)
    if before.encoding == GSM7:
        return SmartEncoding(text, False, (), before, before, ())
    encodable = _encodable(shift_table)
    mask = _protected_mask(text, protected)
    bounds = grapheme_boundaries(text)
    pieces: list[str] = []
    changes: list[Substitution] = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        cluster = text[a:b]
        if encodable.issuperset(cluster) or mask.find(1, a, b) != -1:
            pieces.append(cluster)
            continue
        replacement, reasons = _substitute(cluster, encodable)
        if replacement != cluster:
            changes.append(Substitution(a, b, cluster, replacement, "; ".join(reasons)))
        pieces.append(replacement)
    candidate = "".join(pieces)
    after = analyze(candidate, shift_table=shift_table) if changes else before
    if after.encoding == GSM7 and after.segments < before.segments:
        return SmartEncoding(candidate, True, tuple(changes), before, after, ())
    blocking = () if after.encoding == GSM7 else _unencodable(candidate, encodable)
    return SmartEncoding(text, False, (), before, before, blocking)


def _encodable(shift_table: str | None) -> frozenset[str]:
    """Return every character some charset of `shift_table` (or the default) can encode."""
    if shift_table is None:
        return DEFAULT_CHARSET.chars
    return frozenset().union(*(charset.chars for charset in charsets_for(shift_table)))


def _protected_mask(text: str, spans: Iterable[tuple[int, int]]) -> bytearray:
    """Return a byte per character of `text`, 1 where it must not be changed."""
    mask = bytearray(len(text))
    for start, end in spans:
        if not 0 <= start <= end <= len(text):
            raise InvalidSpanError(start, end, len(text))
        mask[start:end] = b"\x01" * (end - start)
    for url in find_urls(text):
        mask[url.start : url.end] = b"\x01" * (url.end - url.start)
    return mask


def _substitute(cluster: str, encodable: frozenset[str]) -> tuple[str, list[str]]:
    """Return the NFC, look-alike-substituted form of one grapheme cluster and why it changed."""
    normalized = unicodedata.normalize("NFC", cluster)
    reasons = ["NFC"] if normalized != cluster else []
    out: list[str] = []
    for ch in normalized:
        replacement = None if ch in encodable else LOOKALIKES.get(ch)
        if replacement is None or not encodable.issuperset(replacement):
            out.append(ch)
            continue
        out.append(replacement)
        name = unicodedata.name(ch, "")
        reasons.append(f"U+{ord(ch):04X} {name} -> {replacement!r}")
    return "".join(out), reasons


def _unencodable(text: str, encodable: frozenset[str]) -> tuple[str, ...]:
    """Return the distinct characters of `text` outside `encodable`, in order of appearance."""
    return tuple(dict.fromkeys(ch for ch in text if ch not in encodable))
