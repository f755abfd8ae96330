"""URL detection in message text.

Provisional version: http(s) URLs only. The SMS text engine issue makes it complete (bare
domains, `www.`, IDN, trailing punctuation rules). The surface used elsewhere is `find_urls`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL = re.compile(r"(?i)\bhttps?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True, slots=True)
class UrlSpan:
    """A URL found in a text: `text[start:end] == url`."""

    start: int
    end: int
    url: str


def find_urls(text: str) -> list[UrlSpan]:
    """Return the URLs in `text`, in order, with trailing sentence punctuation left outside."""
    spans: list[UrlSpan] = []
    for m in _URL.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in _TRAILING:
            end -= 1
        spans.append(UrlSpan(m.start(), end, text[m.start() : end]))
    return spans
