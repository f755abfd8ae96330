"""A literal text's links are the links the template parser finds in the same text with its
braces escaped, and rendering it with its own URLs gives the text back byte for byte."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrail.domain.template import parse_template
from clicktrail.domain.wrapping import literal_template

PIECES = st.sampled_from(
    [
        "https://shop.example.com/o/1?x=1&y={2}", "http://a.example.com", "www.example.com/p",
        "example.com", "shop.example.co.uk/a.", "{", "}", "{{", "}}", "{first_name}", " ", "\n",
        "Hi ", ".", ",", "(", ")", "—", "é", "😀", "https://", "a@b.com", "x.y", "1.5",
        "https://ex.com/a_(b)", "<https://a.example.com>", "'", '"', "?", "!",
    ]
)  # fmt: skip


@settings(max_examples=400)
@given(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=12).map("".join))
def test_literal_template_matches_the_parser(text: str) -> None:
    fast = literal_template(text)
    slow = parse_template(text.replace("{", "{{").replace("}", "}}"))
    assert [lk.raw for lk in fast.links] == [lk.raw for lk in slow.links]
    assert not any(lk.is_personalized for lk in fast.links)
    raws = [lk.raw for lk in fast.links]
    assert fast.render({}, raws) == text == slow.render({}, raws)
    urls = [f"<{i}>" for i in range(len(raws))]
    assert fast.render({}, urls) == slow.render({}, urls)
