"""Property-based tests of the SMS text engine (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrail.domain.sms import GSM7, SmsInfo, analyze, smart_encode
from clicktrail.domain.sms.graphemes import grapheme_boundaries
from clicktrail.domain.sms.gsm7 import DEFAULT_CHARSET, Charset
from clicktrail.domain.sms.shift_tables import charsets_for
from clicktrail.domain.urls import find_urls

# Pieces chosen to hit every rule: GSM basic, extension, look-alikes, combining marks, surrogate
# pairs, ZWJ sequences, flags, CR LF, Turkish letters, Hangul jamo.
PIECES = [
    "a", "Z", " ", "0", "@", "é", "Ç", "Δ", "\n", "\r\n", "€", "{", "^", "\\",
    "ç", "ş", "ğ", "ı", "á", "“", "—", "…", "\u00a0", "\t", "n\u0303", "\u0301",
    "😀", "👍🏽", "🇫🇷", "👨\u200d👩\u200d👧", "\u200d", "\u1100\u1161", "क्ष", "ж",
    "https://example.com/a", "www.example.com", "shop.example.com/x).",
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=160).map("".join) | st.text(max_size=300)
languages = st.sampled_from([None, "turkish", "spanish", "portuguese"])


def _charset(info: SmsInfo, language: str | None) -> Charset:
    if language is None:
        return DEFAULT_CHARSET
    for charset in charsets_for(language):
        if (charset.locking_shift, charset.single_shift) == (info.locking_shift, info.single_shift):
            return charset
    raise AssertionError("no such charset")


def _units(part: str, info: SmsInfo, language: str | None) -> int:
    if info.encoding == GSM7:
        costs = _charset(info, language).costs
        return sum(costs[ch] for ch in part)
    return len(part.encode("utf-16-le", "surrogatepass")) // 2


@settings(max_examples=300)
@given(texts, languages)
def test_parts_rejoin_and_respect_limits(text: str, language: str | None) -> None:
    info = analyze(text, shift_table=language)
    assert "".join(info.parts) == text
    assert info.segments == len(info.parts) >= 1
    used = [_units(part, info, language) for part in info.parts]
    assert sum(used) == info.units
    assert all(u <= info.limit for u in used)
    assert info.units_left == info.limit - used[-1]
    if info.segments > 1:
        assert all(part for part in info.parts)


@settings(max_examples=300)
@given(texts)
def test_ucs2_parts_end_on_grapheme_boundaries(text: str) -> None:
    info = analyze(text)
    if info.encoding == GSM7 or info.segments == 1:
        return
    bounds = set(grapheme_boundaries(text))
    offset = 0
    for part in info.parts[:-1]:
        offset += len(part)
        # Only a cluster larger than a whole segment may be cut.
        if offset not in bounds:
            start = max(b for b in bounds if b < offset)
            end = min(b for b in bounds if b > offset)
            assert len(text[start:end].encode("utf-16-le", "surrogatepass")) // 2 > info.limit
        assert not ("\ud800" <= text[offset - 1] <= "\udbff")


@settings(max_examples=300)
@given(texts, languages)
def test_smart_encoding_never_costs_more(text: str, language: str | None) -> None:
    result = smart_encode(text, shift_table=language)
    assert result.after.segments <= result.before.segments
    if not result.applied:
        assert result.text == text
        assert result.changes == ()
        return
    assert result.after.encoding == GSM7
    assert result.after.segments < result.before.segments
    # The reported changes are exactly the difference.
    rebuilt, cursor = [], 0
    for change in result.changes:
        assert text[change.start : change.end] == change.original
        rebuilt.append(text[cursor : change.start] + change.replacement)
        cursor = change.end
    rebuilt.append(text[cursor:])
    assert "".join(rebuilt) == result.text
    # URLs are untouched.
    for url in find_urls(text):
        assert not any(c.start < url.end and url.start < c.end for c in result.changes)


@given(texts)
def test_url_spans_are_exact_and_ordered(text: str) -> None:
    spans = find_urls(text)
    last_end = 0
    for span in spans:
        assert text[span.start : span.end] == span.url
        assert span.start >= last_end
        assert span.url
        assert span.url[-1] not in ".,:;!?'"
        last_end = span.end
