"""URL detection in message text.

`find_urls(text)` finds what a person typing an SMS means as a link:

- `http://` / `https://` URLs, any case of scheme (`HTTPS://`), with ports, userinfo, query
  strings, fragments, IP or IDN hosts;
- bare `www.` hosts (`www.example.com`, with or without a path);
- bare domains *with a path* (`shop.example.com/sale`) whose TLD is in `tlds.TLDS` (or is
  punycode). Without a path a bare name is too often a file name (`readme.md`, `setup.py`).

Never matched: e-mail addresses (`anna@shop.example.com`), abbreviations (`e.g.`), file names
(`file.txt`), version numbers (`1.2.3`). Trailing sentence punctuation (`. , : ; ! ? ' * …`) and
a closing bracket that has no opening partner inside the URL stay outside it, so
`(see https://en.wikipedia.org/wiki/Bracket_(disambiguation)).` yields the Wikipedia link with
its own `)`. Whitespace, `<`, `>`, `"`, typographic quotes and CJK punctuation always end a URL.
Placeholders (`{first_name}`) are the caller's business: it replaces them by runs of `x` of the
same length before calling, so offsets stay valid.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from clicktrail.domain.tlds import TLDS

# Characters that end a URL wherever they appear (they are never part of one in a message).
_END: Final = (
    r"\s<>\""
    "\u00ab\u00bb\u2018\u2019\u201c\u201d\u201e\u2039\u203a"  # « » ‘ ’ “ ” „ ‹ ›
    "\u3001\u3002\u300c-\u300f\u3010\u3011"  # 、 。 「 」 『 』 【 】
    "\uff08\uff09\uff0c\uff01\uff1f\uff1b\uff1a"  # （ ） ， ！ ？ ； ：
)
# A host label character: anything but whitespace, ASCII punctuation other than `-`, and the
# Unicode punctuation / symbol blocks. Labels are validated precisely afterwards.
_HOST_CHAR: Final = (
    r"[^\s\x00-\x2c./:-@\[-`{-\x7f\u0080-\u00bf\u00d7\u00f7\u2000-\u2bff\u2e00-\u2e7f"
    r"\u3000-\u303f\ufe10-\ufe6f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
    r"\U0001f000-\U0001ffff]"
)
_HOST: Final = rf"{_HOST_CHAR}+(?:\.{_HOST_CHAR}+)+"
_PORT: Final = r"(?::\d{1,5})?"
# A bare host must not continue a word, a path, an e-mail address or a number.
_NOT_GLUED: Final = r"(?<![\w.@/%+&=~#?$\\-])"
_URL: Final = re.compile(
    rf"(?P<scheme>(?<![a-zA-Z0-9+.-])(?i:https?)://[^{_END}]+)"
    rf"|(?P<www>{_NOT_GLUED}(?i:www)\.{_HOST}{_PORT}(?:[/?#][^{_END}]*)?)"
    rf"|(?P<bare>{_NOT_GLUED}{_HOST}{_PORT}/[^{_END}]*)"
)
_TRAILING: Final = frozenset(".,:;!?'*…")
_OPENERS: Final = {")": "(", "]": "[", "}": "{"}
_ASCII_LABEL: Final = re.compile(r"(?i)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PUNYCODE_TLD: Final = re.compile(r"(?i)xn--[a-z0-9-]{2,59}")


@dataclass(frozen=True, slots=True)
class UrlSpan:
    """A URL found in a text: `text[start:end] == url`."""

    start: int
    end: int
    url: str


def find_urls(text: str) -> list[UrlSpan]:
    """Return the URLs in `text`, in order, with trailing sentence punctuation left outside.

    Offsets are Python string indices. Never raises: text that is not a URL is skipped.
    """
    spans: list[UrlSpan] = []
    for m in _URL.finditer(text):
        url = _trim(m.group())
        kind = m.lastgroup
        if kind == "scheme":
            if not _has_host(url):
                continue
        elif not _valid_host(_host_of(url), known_tld=kind == "bare"):
            continue
        start = m.start()
        spans.append(UrlSpan(start, start + len(url), url))
    return spans


def _trim(url: str) -> str:
    """Return `url` without trailing punctuation and unbalanced closing brackets."""
    end = len(url)
    while end:
        last = url[end - 1]
        opener = _OPENERS.get(last)
        if last in _TRAILING or (
            opener is not None and url.count(last, 0, end) > url.count(opener, 0, end)
        ):
            end -= 1
            continue
        break
    return url[:end]


def _has_host(url: str) -> bool:
    """Return True if a scheme URL has a non-empty host after `://` (and any userinfo)."""
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    host = authority.split(":", 1)[0] if not authority.startswith("[") else authority
    return any(ch.isalnum() for ch in host)


def _host_of(url: str) -> str:
    """Return the host part of a scheme-less URL (before any port, path, query or fragment)."""
    return re.split(r"[:/?#]", url, maxsplit=1)[0]


def _valid_host(host: str, *, known_tld: bool) -> bool:
    """Return True if every label of `host` is a valid (IDN) label and its TLD looks real.

    With `known_tld`, the TLD must be in `TLDS` or be punycode; otherwise any alphabetic TLD of
    two letters or more is accepted.
    """
    labels = host.split(".")
    if len(labels) < 2 or not all(_valid_label(label) for label in labels):
        return False
    tld = labels[-1].lower()
    if _PUNYCODE_TLD.fullmatch(tld):
        return True
    if known_tld:
        return tld in TLDS
    return len(tld) >= 2 and all(unicodedata.category(ch)[0] in "LM" for ch in tld)


def _valid_label(label: str) -> bool:
    """Return True if `label` is an LDH label or an internationalized one (letters, marks,
    digits and inner hyphens, not starting with a combining mark)."""
    if label.isascii():
        return _ASCII_LABEL.fullmatch(label) is not None
    if len(label) > 63 or label[0] == "-" or label[-1] == "-":
        return False
    if unicodedata.category(label[0])[0] == "M":
        return False
    return all(ch == "-" or unicodedata.category(ch)[0] in "LMN" for ch in label)
