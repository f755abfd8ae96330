"""Extended grapheme clusters (UAX #29), the subset the SMS splitter relies on."""

from __future__ import annotations

import pytest

from clicktrail.domain.sms.graphemes import breaks_everywhere, grapheme_boundaries, graphemes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("abc", ["a", "b", "c"]),
        ("a\r\nb", ["a", "\r\n", "b"]),  # GB3
        ("\n\r", ["\n", "\r"]),  # GB4/GB5
        ("e\u0301x", ["e\u0301", "x"]),  # GB9
        ("\u0915\u093f", ["\u0915\u093f"]),  # GB9a: Devanagari KA + vowel sign I (Mc)
        ("\u0600\u0661", ["\u0600\u0661"]),  # GB9b: prepended concatenation mark
        ("\u0915\u094d\u0937\u093e", ["\u0915\u094d\u0937\u093e"]),  # GB9c: क्षा
        ("\u0915\u094d\u200d\u0937", ["\u0915\u094d\u200d\u0937"]),  # GB9c through ZWJ
        ("\u1100\u1161\u11a8", ["\u1100\u1161\u11a8"]),  # GB6/GB7/GB8
        ("\uac00\u11a8\uac01", ["\uac00\u11a8", "\uac01"]),  # LV T | LVT
        ("🇫🇷🇩🇪🇮", ["🇫🇷", "🇩🇪", "🇮"]),  # GB12/GB13
        ("👩\u200d💻!", ["👩\u200d💻", "!"]),  # GB11
        ("a\u200d💻", ["a\u200d", "💻"]),  # ZWJ after a letter does not join the emoji
        ("👍🏿👍", ["👍🏿", "👍"]),  # emoji modifier is Extend
        ("☺\ufe0f.", ["☺\ufe0f", "."]),  # variation selector
        ("a\u200bb", ["a", "\u200b", "b"]),  # ZERO WIDTH SPACE is a control (Cf)
    ],
)
def test_clusters(text: str, expected: list[str]) -> None:
    assert graphemes(text) == expected
    assert grapheme_boundaries(text)[-1] == len(text)


def test_breaks_everywhere_detects_simple_texts() -> None:
    assert breaks_everywhere(set("Привет мир 😀 中文 한국"))
    assert not breaks_everywhere(set("e\u0301"))
    assert not breaks_everywhere(set("\r\n"))
    assert not breaks_everywhere(set("🇫🇷"))
