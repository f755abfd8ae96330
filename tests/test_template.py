"""Message templates: placeholders, escapes, notrack URLs, links, byte-for-byte rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.template import Field, LinkSlot, Text, check_fields, parse_template
from clicktrail.domain.urls import find_urls

VALUES = {"first_name": "Ann", "external_id": "E-7", "phone": "+14155550100", "city": ""}


def unwrapped(source: str, values: dict[str, str]) -> str:
    """Render `source` with every link replaced by its own (personalized) destination."""
    t = parse_template(source)
    return t.render(values, [lk.destination(values) for lk in t.links])


# -- placeholders and escapes ---------------------------------------------------------------------


def test_placeholder_is_filled_and_fallback_used_only_when_empty() -> None:
    t = parse_template("Hi {first_name|there}! City: {city|unknown}. Id {external_id}")
    assert t.links == ()
    assert t.render(VALUES, []) == "Hi Ann! City: unknown. Id E-7"
    assert t.render({}, []) == "Hi there! City: unknown. Id "
    assert t.fields == {"first_name", "city", "external_id"}
    assert t.fields_without_fallback == {"external_id"}


def test_placeholder_name_is_trimmed_and_fallback_kept_verbatim() -> None:
    t = parse_template("{ first_name | dear friend }")
    assert t.parts == (Field("first_name", " dear friend "),)
    assert t.render({}, []) == " dear friend "


def test_empty_fallback_differs_from_no_fallback() -> None:
    t = parse_template("{a|}{b}")
    assert t.parts == (Field("a", ""), Field("b", None))
    assert t.fields_without_fallback == {"b"}


def test_double_braces_are_literal_braces() -> None:
    t = parse_template("{{first_name}} costs {{5}} {first_name}")
    assert t.fields == {"first_name"}
    assert t.render({"first_name": "Bo"}, []) == "{first_name} costs {5} Bo"


def test_notrack_url_is_kept_verbatim_and_not_wrapped() -> None:
    t = parse_template("Buy https://shop.example.com/a, terms {notrack:https://shop.example.com/t}")
    assert [lk.raw for lk in t.links] == ["https://shop.example.com/a"]
    assert t.render({}, ["<L0>"]) == "Buy <L0>, terms https://shop.example.com/t"


def test_notrack_prefix_is_case_insensitive_and_must_not_be_empty() -> None:
    assert parse_template("{NoTrack:www.a.com}").render({}, []) == "www.a.com"
    with pytest.raises(InvalidInput, match="character 3"):
        parse_template("a {notrack: }")


# -- links ----------------------------------------------------------------------------------------


def test_links_are_found_in_order_with_trailing_punctuation_outside() -> None:
    t = parse_template("A https://a.example.com/x. B www.b.com, C shop.example.com/sale!")
    assert [lk.raw for lk in t.links] == [
        "https://a.example.com/x",
        "www.b.com",
        "shop.example.com/sale",
    ]
    assert [p.index for p in t.parts if isinstance(p, LinkSlot)] == [0, 1, 2]
    assert t.render({}, ["1", "2", "3"]) == "A 1. B 2, C 3!"


def test_url_with_placeholder_is_one_personalized_link() -> None:
    t = parse_template("Go https://shop.example.com/?ref={external_id}&n={first_name|x} now")
    assert len(t.links) == 1
    link = t.links[0]
    assert link.raw == "https://shop.example.com/?ref={external_id}&n={first_name|x}"
    assert link.is_personalized
    assert link.destination(VALUES) == "https://shop.example.com/?ref=E-7&n=Ann"
    assert link.destination({}) == "https://shop.example.com/?ref=&n=x"
    assert t.render(VALUES, ["S"]) == "Go S now"
    assert t.fields == {"external_id", "first_name"}


def test_placeholder_as_url_path_segment_is_inside_the_link() -> None:
    t = parse_template("https://shop.example.com/u/{external_id}/deal")
    assert [lk.raw for lk in t.links] == ["https://shop.example.com/u/{external_id}/deal"]
    assert t.links[0].destination({"external_id": "42"}) == "https://shop.example.com/u/42/deal"


def test_static_link_is_not_personalized() -> None:
    t = parse_template("Hi {first_name}: https://shop.example.com/sale")
    assert not t.links[0].is_personalized
    assert t.links[0].destination(VALUES) == "https://shop.example.com/sale"


def test_contact_values_are_never_taken_for_links() -> None:
    t = parse_template("Hi {first_name}")
    assert t.links == ()
    assert t.render({"first_name": "www.evil.com/x"}, []) == "Hi www.evil.com/x"


def test_escaped_braces_end_a_url() -> None:
    t = parse_template("{{https://a.example.com/x}}")
    assert [lk.raw for lk in t.links] == ["https://a.example.com/x"]
    assert t.render({}, ["L"]) == "{L}"


def test_escapes_before_and_after_a_link_in_the_same_literal_run() -> None:
    t = parse_template("a {{b}} www.x.com/p {{c}} d")
    assert [lk.raw for lk in t.links] == ["www.x.com/p"]
    assert t.render({}, ["L"]) == "a {b} L {c} d"


# -- rendering keeps text byte-for-byte -----------------------------------------------------------

plain_text = st.text(
    alphabet=st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]), max_size=80
)


@given(plain_text)
def test_text_without_urls_or_braces_renders_unchanged(text: str) -> None:
    if find_urls(text):
        return
    t = parse_template(text)
    assert t.links == ()
    assert t.render({}, []) == text


@given(plain_text)
def test_any_brace_free_text_renders_unchanged_with_raw_link_text(text: str) -> None:
    t = parse_template(text)
    assert t.render({}, [lk.raw for lk in t.links]) == text
    assert [lk.raw for lk in t.links] == [s.url for s in find_urls(text)]


NAMES = ["first_name", "external_id", "city"]
# Pieces of a template and what each renders to with VALUES (links rendered unwrapped).
piece = st.one_of(
    plain_text.map(lambda s: (s, s)),
    st.sampled_from(NAMES).map(lambda n: ("{" + n + "}", VALUES.get(n, ""))),
    st.tuples(st.sampled_from(NAMES), st.text("abc xyz", max_size=5)).map(
        lambda p: ("{" + p[0] + "|" + p[1] + "}", VALUES.get(p[0]) or p[1])
    ),
    st.just(("{{", "{")),
    st.just(("}}", "}")),
    st.sampled_from(["https://a.example.com/p", "www.b.com", "shop.example.com/x?y=1"]).map(
        lambda u: (" " + u + " ", " " + u + " ")
    ),
    st.sampled_from(["https://a.example.com/t", "www.c.com"]).map(
        lambda u: ("{notrack:" + u + "}", u)
    ),
    st.just(("https://s.example.com/?r={external_id}", "https://s.example.com/?r=E-7")),
)


@given(st.lists(piece, max_size=12))
def test_render_with_destinations_equals_template_with_placeholders_substituted(
    pieces: list[tuple[str, str]],
) -> None:
    source = "".join(p[0] for p in pieces)
    expected = "".join(p[1] for p in pieces)
    assert unwrapped(source, VALUES) == expected


@given(st.lists(piece, max_size=12))
def test_notrack_urls_are_never_links(pieces: list[tuple[str, str]]) -> None:
    source = "".join(p[0] for p in pieces)
    t = parse_template(source)
    for lk in t.links:
        assert "notrack" not in lk.raw
        assert "{{" not in lk.raw
        assert "}}" not in lk.raw


def test_wrapped_render_keeps_all_text_around_links() -> None:
    src = "Olá {first_name|amiga} 👋 — oferta: https://loja.example.com/x?a=1&b=2 (até 5/12)."
    t = parse_template(src)
    assert t.render({"first_name": "Zé"}, ["https://sms.example.com/c/AAAAAAAAA"]) == (
        "Olá Zé 👋 — oferta: https://sms.example.com/c/AAAAAAAAA (até 5/12)."
    )


# -- malformed templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "position", "what"),
    [
        ("Hi {first_name", 4, "never closed"),
        ("abc {{ and {", 12, "never closed"),
        ("Hi } there", 4, "no opening"),
        ("{first_name} }x", 14, "no opening"),
        ("Hi {bad name}", 4, "not a placeholder"),
        ("{1abc}", 1, "not a placeholder"),
        ("x{}", 2, "not a placeholder"),
        ("ok {a-b|c}", 4, "not a placeholder"),
    ],
)
def test_malformed_template_names_the_character_position(
    source: str, position: int, what: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template(source)
    assert f"character {position} " in info.value.message
    assert what in info.value.message
    assert info.value.field == "template"


def test_position_counts_characters_not_bytes() -> None:
    with pytest.raises(InvalidInput, match=r"character 4 "):
        parse_template("äöü}")


# -- check_fields ---------------------------------------------------------------------------------


def test_check_fields_accepts_known_names() -> None:
    check_fields(parse_template("{first_name} {city|x}"), {"first_name", "city"})


def test_check_fields_reports_every_unknown_placeholder_in_text_and_urls() -> None:
    t = parse_template("{frist_name} https://a.example.com/?x={coupon} {first_name}")
    with pytest.raises(InvalidInput) as info:
        check_fields(t, {"first_name", "phone"})
    msg = info.value.message
    assert "{coupon}" in msg
    assert "{frist_name}" in msg
    assert "{first_name}" not in msg.split(";")[0]
    assert sorted(p.message for p in info.value.problems) == [
        "unknown placeholder {coupon}",
        "unknown placeholder {frist_name}",
    ]


def test_parts_structure_of_a_mixed_template() -> None:
    t = parse_template("Hi {first_name}, www.a.com/x")
    assert t.parts == (Text("Hi "), Field("first_name", None), Text(", "), LinkSlot(0))
    assert re.fullmatch(r"www\.a\.com/x", t.links[0].raw)
