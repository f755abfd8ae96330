"""Message templates: personalization placeholders and the links to wrap.

Syntax (docs/concepts.md#templates):

* ``{first_name}`` — a contact field: ``phone``, ``external_id``, ``first_name`` or any imported
  attribute column. ``{first_name|there}`` gives a fallback used when the contact has no value.
* ``{{`` and ``}}`` — literal braces.
* ``{notrack:https://example.com/terms}`` — a URL sent as written, never wrapped.
* Every other URL in the text is a *link*: it is replaced by a per-recipient short URL. A URL may
  contain placeholders (``https://shop.example/?ref={external_id}``): its destination is then
  personalized per recipient.

URLs are detected on the template, not on personalized text, so a contact's values are never
taken for links; all text outside links and placeholders is kept byte-for-byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.sms.errors import check_characters
from clicktrail.domain.urls import find_urls

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# `contact_id` is the contact's external id under the name links use (docs/conversions.md).
STANDARD_FIELDS = ("phone", "external_id", "first_name", "contact_id")


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text, sent as is."""

    text: str


@dataclass(frozen=True, slots=True)
class Field:
    """A personalization placeholder."""

    name: str
    fallback: str | None


@dataclass(frozen=True, slots=True)
class LinkSlot:
    """The place of the link numbered `index` (0-based, in order of appearance)."""

    index: int


Part = Text | Field | LinkSlot
UrlPart = Text | Field


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One URL position of a template: its raw text and how to build its destination."""

    index: int
    raw: str
    parts: tuple[UrlPart, ...]

    @property
    def is_personalized(self) -> bool:
        """True when the destination contains placeholders."""
        return any(isinstance(p, Field) for p in self.parts)

    def destination(self, values: Mapping[str, str]) -> str:
        """Return the destination URL for a recipient with these field values."""
        return _render_parts(self.parts, values, ())


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: its parts, the links it wraps and the fields it uses."""

    source: str
    parts: tuple[Part, ...]
    links: tuple[LinkSpec, ...]

    @property
    def fields(self) -> frozenset[str]:
        """Names of every placeholder, in the text and inside link URLs."""
        names = {p.name for p in self.parts if isinstance(p, Field)}
        for link in self.links:
            names.update(p.name for p in link.parts if isinstance(p, Field))
        return frozenset(names)

    @property
    def fields_without_fallback(self) -> frozenset[str]:
        """Names of placeholders that have no fallback anywhere they appear."""
        all_parts: list[Part | UrlPart] = list(self.parts)
        for link in self.links:
            all_parts.extend(link.parts)
        with_fb = {p.name for p in all_parts if isinstance(p, Field) and p.fallback is not None}
        bare = {p.name for p in all_parts if isinstance(p, Field) and p.fallback is None}
        return frozenset(bare - with_fb)

    def render(self, values: Mapping[str, str], link_urls: Sequence[str]) -> str:
        """Return the message for a recipient: placeholders filled, links replaced by `link_urls`.

        `link_urls[i]` replaces link `i`; pass each link's raw text to render unwrapped.
        """
        return _render_parts(self.parts, values, link_urls)


def _render_parts(
    parts: Sequence[Part], values: Mapping[str, str], link_urls: Sequence[str]
) -> str:
    out: list[str] = []
    for p in parts:
        if isinstance(p, Text):
            out.append(p.text)
        elif isinstance(p, Field):
            v = values.get(p.name) or ""
            out.append(v if v else (p.fallback or ""))
        else:
            out.append(link_urls[p.index])
    return "".join(out)


def render_with_spans(
    template: Template, values: Mapping[str, str], link_urls: Sequence[str]
) -> tuple[str, list[tuple[int, int]]]:
    """Render like `Template.render` and also return the (start, end) spans of inserted values
    and links: the parts of the message that came from the contact or from tracking, which
    smart encoding must leave alone.
    """
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for p in template.parts:
        if isinstance(p, Text):
            piece = p.text
        else:
            if isinstance(p, Field):
                piece = (values.get(p.name) or "") or (p.fallback or "")
            else:
                piece = link_urls[p.index]
            if piece:
                spans.append((pos, pos + len(piece)))
        out.append(piece)
        pos += len(piece)
    return "".join(out), spans


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    part: Text | Field
    notrack: bool = False


def _lex(source: str) -> list[_Token]:
    """Split `source` into literal text and placeholders, keeping source offsets."""
    tokens: list[_Token] = []
    buf: list[str] = []
    buf_start = 0
    i = 0
    n = len(source)

    def flush(at: int) -> None:
        nonlocal buf_start
        if buf:
            tokens.append(_Token(buf_start, at, Text("".join(buf))))
            buf.clear()
        buf_start = at

    while i < n:
        ch = source[i]
        if ch == "{" and source.startswith("{{", i):
            if not buf:
                buf_start = i
            buf.append("{")
            i += 2
        elif ch == "}" and source.startswith("}}", i):
            if not buf:
                buf_start = i
            buf.append("}")
            i += 2
        elif ch == "{":
            close = source.find("}", i + 1)
            if close < 0:
                raise InvalidInput(
                    f"template: '{{' at character {i + 1} is never closed "
                    "(write '{{' for a literal brace)",
                    field="template",
                )
            inner = source[i + 1 : close]
            flush(i)
            if inner.lower().startswith("notrack:"):
                url = inner[len("notrack:") :]
                if not url.strip():
                    raise InvalidInput(
                        f"template: empty {{notrack:}} at character {i + 1}", field="template"
                    )
                tokens.append(_Token(i, close + 1, Text(url), notrack=True))
            else:
                name, sep, fallback = inner.partition("|")
                name = name.strip()
                if not _NAME.match(name):
                    raise InvalidInput(
                        f"template: '{{{inner}}}' at character {i + 1} is not a placeholder; "
                        "names are letters, digits and _ (write '{{' for a literal brace)",
                        field="template",
                    )
                tokens.append(_Token(i, close + 1, Field(name, fallback if sep else None)))
            i = close + 1
            buf_start = i
        elif ch == "}":
            raise InvalidInput(
                f"template: '}}' at character {i + 1} has no opening '{{' "
                "(write '}}' for a literal brace)",
                field="template",
            )
        else:
            if not buf:
                buf_start = i
            buf.append(ch)
            i += 1
    flush(n)
    return tokens


def parse_template(source: str) -> Template:
    """Parse `source` and find the links to wrap.

    Raises `InvalidInput` naming the character position of a malformed placeholder, or of a
    lone UTF-16 surrogate (`LoneSurrogateError`: no database, provider or phone takes one).
    """
    check_characters(source, "template")
    tokens = _lex(source)
    # URL detection runs on a mask of the source with the same length: placeholders become runs
    # of 'x' (so a URL may contain them), {notrack:…} blocks and brace escapes become spaces (so
    # they are never wrapped). Offsets in the mask are offsets in the source.
    mask_chars = list(source)
    for t in tokens:
        if isinstance(t.part, Field):
            mask_chars[t.start : t.end] = "x" * (t.end - t.start)
        elif t.notrack:
            mask_chars[t.start : t.end] = " " * (t.end - t.start)
    for i, ch in enumerate(mask_chars):
        if ch in "{}":
            mask_chars[i] = " "
    mask = "".join(mask_chars)
    spans = [(s.start, s.end) for s in find_urls(mask)]

    parts: list[Part] = []
    links: list[LinkSpec] = []
    ti = 0
    pos = 0
    for s_start, s_end in spans:
        # Widen a span that cuts a placeholder so it holds it whole.
        for t in tokens:
            if isinstance(t.part, Field) and t.start < s_end and t.end > s_start:
                s_start, s_end = min(s_start, t.start), max(s_end, t.end)
        if s_start < pos:
            continue
        ti = _emit_until(tokens, ti, pos, s_start, parts)
        url_parts: list[UrlPart] = []
        ti = _emit_until(tokens, ti, s_start, s_end, url_parts)
        links.append(LinkSpec(len(links), source[s_start:s_end], tuple(url_parts)))
        parts.append(LinkSlot(len(links) - 1))
        pos = s_end
    _emit_until(tokens, ti, pos, len(source), parts)
    return Template(source, tuple(_merge_text(parts)), tuple(links))


def _emit_until(
    tokens: list[_Token], ti: int, start: int, end: int, out: list[Part] | list[UrlPart]
) -> int:
    """Append the parts of source range [start, end) to `out`; return the next token index."""
    target: list[Text | Field] = out  # type: ignore[assignment]
    while ti < len(tokens) and tokens[ti].start < end:
        t = tokens[ti]
        if t.end <= start:
            ti += 1
            continue
        if isinstance(t.part, Text) and not t.notrack and (t.start < start or t.end > end):
            # A literal run crossing a link boundary: take the overlap only. Literal runs hold
            # no escapes at their cut points because URLs never contain braces in the mask.
            lo, hi = max(t.start, start), min(t.end, end)
            target.append(Text(_slice_literal(t, lo, hi)))
            if t.end > end:
                return ti
            ti += 1
            continue
        target.append(t.part)
        ti += 1
    return ti


def _slice_literal(t: _Token, lo: int, hi: int) -> str:
    assert isinstance(t.part, Text)
    # A literal token's text equals its source slice unless it contains brace escapes, which a
    # link span never cuts through (they are spaces in the mask); offsets then map 1:1 up to the
    # first escape. Recompute from the source-equivalent text by walking escapes.
    text = t.part.text
    if t.end - t.start == len(text):
        return text[lo - t.start : hi - t.start]
    out: list[str] = []
    src_pos = t.start
    for ch in text:
        width = 2 if ch in "{}" else 1
        if lo <= src_pos < hi:
            out.append(ch)
        src_pos += width
    return "".join(out)


def _merge_text(parts: list[Part]) -> list[Part]:
    merged: list[Part] = []
    for p in parts:
        if isinstance(p, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].text + p.text)
        else:
            merged.append(p)
    return merged


def check_fields(template: Template, known: set[str]) -> None:
    """Raise `InvalidInput` listing every placeholder that is not a known contact field."""
    unknown = sorted(template.fields - known)
    if unknown:
        fields = ", ".join(sorted(known))
        raise InvalidInput(
            "template uses unknown placeholder(s): "
            + ", ".join("{" + u + "}" for u in unknown)
            + f"; known fields: {fields}",
            field="template",
            problems=[Problem("template", f"unknown placeholder {{{u}}}") for u in unknown],
        )
