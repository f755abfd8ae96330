"""Wrapping a message: render a campaign's template for one contact with a fresh short URL per
link, and encode it per the campaign's options. Pure: tokens come from `token_factory` (a
cryptographic source by default), and storing the message is the caller's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from clicktrail.domain.models import Campaign, CampaignOptions, Contact, Domain
from clicktrail.domain.sms import SmsInfo, analyze, smart_encode
from clicktrail.domain.template import Template, render_with_spans
from clicktrail.domain.tokens import new_token

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


def wrap_for_contact(
    template: Template,
    campaign: Campaign,
    domain: Domain,
    contact: Contact,
    token_factory: Callable[[], str] = new_token,
) -> WrappedMessage:
    """Render the template for `contact`, each link replaced by a fresh short URL."""
    values = contact.field_values()
    link_ids = {lk.index: lk.id for lk in campaign.links}
    base = domain.base_url
    tokens: list[tuple[str, int, str | None]] = []
    urls: list[str] = []
    dests: list[str] = []
    for spec in template.links:
        tok = token_factory()
        dest = spec.destination(values) if spec.is_personalized else None
        tokens.append((tok, link_ids[spec.index], dest))
        urls.append(base + tok)
        dests.append(dest if dest is not None else spec.raw)
    body, info = encode_message(template, values, urls, campaign.options)
    return WrappedMessage(body, info.encoding, info.segments, tuple(tokens), tuple(dests))


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
