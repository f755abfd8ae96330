"""URL detection in message text."""

from __future__ import annotations

import pytest

from clicktrail.domain.tlds import TLDS
from clicktrail.domain.urls import UrlSpan, find_urls


def urls(text: str) -> list[str]:
    found = find_urls(text)
    for span in found:
        assert text[span.start : span.end] == span.url
    return [span.url for span in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Track: https://ct.example/AbC123", ["https://ct.example/AbC123"]),
        (
            "HTTPS://EXAMPLE.COM/X and Http://a.example.org",
            ["HTTPS://EXAMPLE.COM/X", "Http://a.example.org"],
        ),
        ("http://localhost:8080/health", ["http://localhost:8080/health"]),
        ("http://192.168.0.1/admin", ["http://192.168.0.1/admin"]),
        (
            "https://user:pw@example.com:8443/a?b=1&c=2#top",
            ["https://user:pw@example.com:8443/a?b=1&c=2#top"],
        ),
        (
            "https://example.com/search?q=a+b&lang=en#results",
            ["https://example.com/search?q=a+b&lang=en#results"],
        ),
        ("www.example.com", ["www.example.com"]),
        ("WWW.Example.co.uk/Sale?x=1", ["WWW.Example.co.uk/Sale?x=1"]),
        ("shop.example.com/sale", ["shop.example.com/sale"]),
        ("example.com:8080/x", ["example.com:8080/x"]),
        ("Link:shop.example.com/x", ["shop.example.com/x"]),
        ("münchen.de/stadtplan", ["münchen.de/stadtplan"]),
        ("пример.рф/путь", ["пример.рф/путь"]),
        ("http://例え.jp/パス", ["http://例え.jp/パス"]),
        ("xn--mnchen-3ya.de/x", ["xn--mnchen-3ya.de/x"]),
        ("https://de.wikipedia.org/wiki/Straße", ["https://de.wikipedia.org/wiki/Straße"]),
    ],
)
def test_finds_urls(text: str, expected: list[str]) -> None:
    assert urls(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go to https://example.com/a.", "https://example.com/a"),
        ("Go to https://example.com/a!", "https://example.com/a"),
        ("Really? https://example.com/a?", "https://example.com/a"),
        ("see https://example.com/a, then", "https://example.com/a"),
        ("see https://example.com/a; then", "https://example.com/a"),
        ("at https://example.com/a: now", "https://example.com/a"),
        ("wait https://example.com/a...", "https://example.com/a"),
        ("wait https://example.com/a…", "https://example.com/a"),
        ("(see https://example.com/a)", "https://example.com/a"),
        ("(see https://example.com/a).", "https://example.com/a"),
        ("[https://example.com/a]", "https://example.com/a"),
        ("{https://example.com/a}", "https://example.com/a"),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("(https://en.wikipedia.org/wiki/Foo_(bar))", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("(https://en.wikipedia.org/wiki/Foo_(bar)).", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("https://example.com/a[1]", "https://example.com/a[1]"),
        ('"https://example.com/a"', "https://example.com/a"),
        ("'https://example.com/a'", "https://example.com/a"),
        ("“https://example.com/a”", "https://example.com/a"),
        ("«https://example.com/a»", "https://example.com/a"),
        ("<https://example.com/a>", "https://example.com/a"),
        ("‘shop.example.com/a’.", "shop.example.com/a"),
        ("(www.example.com).", "www.example.com"),
        ("请访问https://example.com/a。谢谢", "https://example.com/a"),
        ("See www.example.com.", "www.example.com"),
    ],
)
def test_punctuation_brackets_and_quotes_stay_outside(text: str, expected: str) -> None:
    assert urls(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "e.g. this",
        "i.e./or",
        "open file.txt now",
        "open file.txt/ now",
        "readme.md and setup.py",
        "version 1.2.3 and 1.2.3/4",
        "rated 4.5/5",
        "anna@example.com",
        "mail anna@shop.example.com/x",
        "anna.smith@mail.example.org",
        "mailto:anna@example.com",
        "ftp://files.example.com/x",
        "http://",
        "https://.",
        "xhttps://example.com",
        "foo.baz/qux",
        "U.S./Canada",
        "www.localhost",
        "-shop.example.com/x",
    ],
)
def test_ignores_things_that_are_not_links(text: str) -> None:
    assert urls(text) == []


def test_several_urls_and_offsets() -> None:
    text = "A: https://a.example/1, B: www.b.example.com/2 and c.example.net/3."
    found = find_urls(text)
    assert [u.url for u in found] == [
        "https://a.example/1",
        "www.b.example.com/2",
        "c.example.net/3",
    ]
    assert found[0] == UrlSpan(3, 22, "https://a.example/1")


def test_placeholders_replaced_by_x_runs_keep_offsets() -> None:
    template = "Hi {name}, https://shop.example.com/u/{user_id}?c=1 bye"
    masked = template.replace("{name}", "x" * 6).replace("{user_id}", "x" * 9)
    (span,) = find_urls(masked)
    assert template[span.start : span.end] == "https://shop.example.com/u/{user_id}?c=1"


def test_tld_list_has_cc_and_generic_tlds() -> None:
    assert {"com", "org", "net", "uk", "de", "io", "co", "shop", "app", "рф"} <= TLDS
    assert not {"txt", "zip", "mov", "g", "exe", "jpg"} & TLDS
    two_letter = {t for t in TLDS if len(t) == 2 and t.isascii()}
    assert len(two_letter) > 240
