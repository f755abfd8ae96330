"""Wrapping a message: render a campaign's template for one contact with a fresh short URL per
link, and encode it per the campaign's options; a sender's literal text as a template, and the
digest that keys a wrapped text. Pure: tokens come from `token_factory` (a cryptographic source
by default), and storing the message is the caller's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from clicktrail.domain.models import Campaign, CampaignOptions, Contact, Domain
from clicktrail.domain.sms import SmsInfo, analyze, smart_encode
from clicktrail.domain.template import LinkSlot, LinkSpec, Part, Template, render_with_spans
from clicktrail.domain.template import Text as TextPart
from clicktrail.domain.tokens import new_token
from clicktrail.domain.urls import find_urls

# Fresh tokens are drawn for a whole batch again when storage finds one already taken
# (domain/tokens.py: collisions are rare, not impossible); give up after this many draws.
TOKEN_RETRIES = 5


@dataclass(frozen=True)
class WrappedMessage:
    """A message rendered for one contact with fresh tokens."""

    body: str
    encoding: str
    segments: int
    tokens: tuple[tuple[str, int, str | None], ...]
    destinations: tuple[str, ...]
    macros: Mapping[str, str] = field(default_factory=dict)  # {variant} when it had one


def wrap_for_contact(
    template: Template,
    campaign: Campaign,
    domain: Domain,
    contact: Contact,
    token_factory: Callable[[], str] = new_token,
    variant: str | None = None,
) -> WrappedMessage:
    """Render the template for `contact`, each link replaced by a fresh short URL.

    With `variant` (the name of one of the campaign's variants, whose template `template` is),
    ``{variant}`` is its name, and a link whose URL differs from the campaign's link at that
    position keeps its own destination on its token. Without it, a campaign with variants
    renders ``{variant}`` as its first variant's name (previews and test sends)."""
    values = {**contact.field_values(), **campaign.macro_values()}
    if variant is None and campaign.options.variants is not None:
        variant = campaign.options.variants.variants[0].name  # previews and test sends
    macros = {} if variant is None else {"variant": variant}
    values.update(macros)
    link_ids = {lk.index: lk.id for lk in campaign.links}
    link_urls = {lk.index: lk.url for lk in campaign.links}
    base = domain.base_url
    tokens: list[tuple[str, int, str | None]] = []
    urls: list[str] = []
    dests: list[str] = []
    for spec in template.links:
        tok = token_factory()
        dest = (
            spec.destination(values)
            if spec.is_personalized or spec.raw != link_urls[spec.index]
            else None
        )
        tokens.append((tok, link_ids[spec.index], dest))
        urls.append(base + tok)
        dests.append(dest if dest is not None else spec.raw)
    body, info = encode_message(template, values, urls, campaign.options)
    return WrappedMessage(body, info.encoding, info.segments, tuple(tokens), tuple(dests), macros)


def encode_message(
    template: Template,
    values: Mapping[str, str],
    link_urls: Sequence[str],
    options: CampaignOptions,
) -> tuple[str, SmsInfo]:
    """Render a message and encode it per the campaign's options; return (text, its cost).

    With smart encoding, look-alike characters of the template's own text are replaced when
    that saves segments; personalization values and links are never changed.
    """
    if not options.smart_encoding:
        body = template.render(values, link_urls)
        return body, analyze(body, shift_table=options.shift_table)
    body, spans = render_with_spans(template, values, link_urls)
    smart = smart_encode(body, protected=spans, shift_table=options.shift_table)
    return smart.text, smart.after


def literal_template(text: str) -> Template:
    """Return `text` as a template with no placeholder: braces are text, URLs are links.

    The same links as `parse_template` finds in the text with its braces escaped (braces are
    never part of a URL there either), without its per-character lexer: a 10,000-message
    batch of distinct texts spends a third of the time here otherwise.
    """
    parts: list[Part] = []
    links: list[LinkSpec] = []
    pos = 0
    for span in find_urls(text.replace("{", " ").replace("}", " ")):
        if span.start > pos:
            parts.append(TextPart(text[pos : span.start]))
        raw = text[span.start : span.end]
        links.append(LinkSpec(len(links), raw, (TextPart(raw),)))
        parts.append(LinkSlot(len(links) - 1))
        pos = span.end
    if pos < len(text):
        parts.append(TextPart(text[pos:]))
    return Template(text.replace("{", "{{").replace("}", "}}"), tuple(parts), tuple(links))


def text_digest(kind: str, text: str) -> str:
    """Return the digest that keys a wrapped message's text (`kind`: ``text`` for a sender's
    own text, ``template`` for the campaign's): 32 hex digits of SHA-256."""
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]


def item_field(loc: str, name: str) -> str:
    """Name field `name` of the item at `loc`: ``/items/3/to``, ``/to`` (loc ''), ``line 4: to``."""
    return f"{loc}/{name}" if not loc or loc.startswith("/") else f"{loc}: {name}"
