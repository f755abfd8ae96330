"""Wrap-only: clicktrail wraps the links of messages that your own sender sends.

A sender gives a campaign, a recipient and (usually) the text; clicktrail replaces each URL of
the text by a tracked short link of its own, stores the message and answers the wrapped text
with its id, encoding and segments. The sender sends it, posts delivery receipts to
``POST /v1/messages/status`` like any other, and the campaign's reports count it.

Decisions (docs/providers.md, "Wrap-only API for external senders"):

* **The campaign** is an existing one (slug or id) or one created on first use from a spec
  (name, slug, domain, UTM and click-id options). A campaign used for wrapping becomes
  *wrap-only* (status ``external``): clicktrail never sends it itself, and a campaign that
  clicktrail is sending or has sent cannot be wrapped into.
* **The text** is taken literally: braces are text, not placeholders, and every URL in it is
  wrapped. An item without text gets the campaign's template, personalized for the contact.
  Links are matched to the campaign's links by position: the first URL of the text is the
  campaign's link 1 (keeping its role and UTM overrides) and is redirected to the URL as
  written in this text; positions beyond the campaign's links add links (role ``cta``).
* **The recipient** is a phone (E.164, or national with a region) or the external id of a
  contact. A new phone becomes a contact (with the external id and first name given). An
  opted-out contact gets no message: its item says ``opted_out`` and the sender must not send.
* **Status**: a wrapped message is ``queued`` (provider ``external``) until a receipt moves it
  (``sent``, ``delivered``, ``failed``, ``undelivered``); with `mark_sent` it starts ``sent``.
  Reports count it like any message: sent once a receipt says so, CTR over delivered.
* **Idempotency**: a message is keyed by (campaign, contact, `client_ref`); `client_ref` is
  optional and '' when absent (then one message per contact per campaign). Wrapping the same
  key again returns the stored message and tokens; the same key with another text is a
  conflict (409).
* **All or nothing**: every item is checked before anything is written; errors name the item
  (``/items/3/to``) and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound, Problem
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, CampaignOptions, Contact, ContactInput, Workspace
from clicktrail.domain.slugs import check_slug, slugify
from clicktrail.domain.status import Status
from clicktrail.domain.template import LinkSlot, LinkSpec, Part, Template, parse_template
from clicktrail.domain.template import Text as TextPart
from clicktrail.domain.tokens import new_token
from clicktrail.domain.urls import find_urls
from clicktrail.domain.wrapping import encode_message
from clicktrail.services import campaigns
from clicktrail.services.contacts import normalize_phone
from clicktrail.services.ports import Store

MAX_ITEMS = 10_000
MAX_CLIENT_REF = 200
SAVE_RETRIES = 5
EXTERNAL = "external"  # the status of a wrap-only campaign, and its messages' provider
WRAPPABLE = ("draft", EXTERNAL)


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrapItem:
    """One message to wrap: the recipient (`to` or `external_id`), the text (None: the
    campaign's template) and the sender's key for the message."""

    to: str | None = None
    external_id: str | None = None
    region: str | None = None
    first_name: str | None = None
    text: str | None = None
    client_ref: str | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """A wrap-only campaign to use, created on first use (`name` makes the slug unless given).

    Link numbers of `link_roles` and `link_utm` count from 0 over the links of `template`, or
    of the first item's text when there is no template.
    """

    name: str
    slug: str | None = None
    domain: str | None = None
    template: str | None = None
    link_roles: Mapping[int, str] = field(default_factory=dict)
    link_utm: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    options: CampaignOptions = field(default_factory=CampaignOptions)


@dataclass(frozen=True, slots=True)
class WrappedLink:
    """One link of a wrapped message: its position (from 0), token, short URL and where the
    short URL leads (before UTM and click-id parameters)."""

    index: int
    token: str
    short_url: str
    destination: str


@dataclass(frozen=True, slots=True)
class WrapResult:
    """What became of one item. With `opted_out`, no message exists and the message fields are
    None. `created` is false when an earlier wrap of the same key made the message."""

    index: int
    to: str
    external_id: str | None
    opted_out: bool
    created: bool = False
    message_id: str | None = None
    text: str | None = None
    encoding: str | None = None
    segments: int | None = None
    status: str | None = None
    links: tuple[WrappedLink, ...] = ()


@dataclass
class WrapOutcome:
    """What a wrap call did, item by item, in request order."""

    campaign: Campaign
    items: list[WrapResult]
    created: int = 0
    existing: int = 0
    opted_out: int = 0


@dataclass(frozen=True, slots=True)
class StoredWrap:
    """A message already stored for a (contact, client_ref) key, with its tokens as
    (token, link position, destination)."""

    public_id: str
    contact_id: int
    client_ref: str
    text_digest: str | None
    body: str
    encoding: str
    segments: int
    status: str
    tokens: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A wrapped message to store. `contact_id` None: the new contact with `phone`. Tokens are
    (token, link position, destination or None when the link's URL is the destination)."""

    public_id: str
    contact_id: int | None
    phone: str
    client_ref: str
    text_digest: str
    body: str
    encoding: str
    segments: int
    tokens: tuple[tuple[str, int, str | None], ...]


class WrapStore(Protocol):
    """Persistence of wrap-only messages (implemented by `storage.wrapping.WrapQueries`)."""

    def contacts_by_phone(self, workspace_id: int, phones: Sequence[str]) -> dict[str, Contact]:
        """Return the workspace's contacts with these phones, by phone."""
        ...

    def contacts_by_external_id(
        self, workspace_id: int, external_ids: Sequence[str]
    ) -> dict[str, list[Contact]]:
        """Return the workspace's contacts with these external ids (several may share one)."""
        ...

    def wrapped_messages(
        self, campaign_id: int, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], StoredWrap]:
        """Return the campaign's messages with these (contact id, client_ref) keys."""
        ...

    def save_wrapped(
        self,
        *,
        workspace_id: int,
        campaign_id: int,
        new_contacts: Sequence[ContactInput],
        new_links: Mapping[int, str],
        messages: Sequence[PendingMessage],
        status: Status,
        provider: str,
        now_us: int,
    ) -> bool:
        """Store new contacts, links (position → URL) and messages with their tokens in one
        transaction, and make the campaign wrap-only.

        Returns False (nothing written) when the campaign is no longer a draft or wrap-only.
        Raises `Conflict` when a token, message key, contact or link was taken meanwhile.
        """
        ...


# -- wrapping -----------------------------------------------------------------------------------


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


def _digest(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]


def _at(loc: str, name: str) -> str:
    """Name field `name` of the item at `loc`: ``/items/3/to``, ``/to`` (loc ''), ``line 4: to``."""
    return f"{loc}/{name}" if not loc or loc.startswith("/") else f"{loc}: {name}"


@dataclass
class _Item:
    """An item once checked: its recipient's phone, the contact when known."""

    index: int
    loc: str
    item: WrapItem
    phone: str | None
    contact: Contact | None = None
    unknown: bool = False  # the recipient is malformed or missing


def wrap_messages(
    store: Store,
    wraps: WrapStore,
    workspace: Workspace,
    *,
    campaign: str | CampaignSpec,
    items: Sequence[WrapItem],
    where: Sequence[str],
    clock: Callable[[], int],
    mark_sent: bool = False,
    default_region: str | None = None,
    campaign_field: str = "campaign",
    token_factory: Callable[[], str] = new_token,
    max_items: int | None = MAX_ITEMS,
) -> WrapOutcome:
    """Wrap the links of `items` for campaign `campaign`, all or nothing (module docstring).

    `where[i]` names item i in errors (``/items/3``; '' for a single item's body);
    `campaign_field` names the campaign; `max_items` bounds the batch (None: no bound).
    Raises `InvalidInput` listing every bad item (recipient, text, client_ref), `NotFound`
    for an unknown campaign or domain, `Conflict` for a campaign that clicktrail sends itself,
    a spec that differs from the existing campaign of its slug, or a client_ref reused for
    another text.
    """
    if not items:
        raise InvalidInput("nothing to wrap: give at least one item", field="items")
    if max_items is not None and len(items) > max_items:
        raise InvalidInput(
            f"at most {max_items} items per call, got {len(items)}: split the batch",
            field="items",
        )
    checked, problems = _check_items(items, where, default_region)
    # Every bad item is named at once: recipients by external id are looked up even when
    # other items are malformed.
    problems += _resolve_contacts(wraps, workspace, checked)
    problems.sort(key=lambda p: p[0])
    _raise([p for _, p in problems], "item")
    first_text = next((x.item.text for x in checked if x.item.text is not None), None)
    cp = _campaign_for(store, workspace, campaign, first_text, clock(), campaign_field)
    for _attempt in range(SAVE_RETRIES):
        status = Status.SENT if mark_sent else Status.QUEUED
        outcome, pending, new_contacts, new_links = _wrap(
            store, wraps, workspace, cp, checked, status, token_factory
        )
        if outcome.created == 0 and cp.status == EXTERNAL:
            return outcome
        try:
            saved = wraps.save_wrapped(
                workspace_id=workspace.id,
                campaign_id=cp.id,
                new_contacts=new_contacts,
                new_links=new_links,
                messages=pending,
                status=status,
                provider=EXTERNAL,
                now_us=clock(),
            )
        except Conflict:
            # A token collided, or a concurrent call made a contact, link or message of ours:
            # read again (its message is then returned as existing) and draw new tokens.
            _raise([p for _, p in _resolve_contacts(wraps, workspace, checked)], "item")
            cp = campaigns.get_campaign(store, workspace, cp.public_id)
            continue
        if not saved:
            raise _not_wrappable(campaigns.get_campaign(store, workspace, cp.public_id))
        return outcome
    raise Conflict("could not store the wrapped messages after several tries; try again")


# A sender wraps for the same recipients day after day, and retries whole batches: parsing and
# validating a number costs ~40 µs (libphonenumber's metadata walk), a cache hit ~0.2 µs.
_normalize = lru_cache(maxsize=100_000)(normalize_phone)


def _check_items(
    items: Sequence[WrapItem], where: Sequence[str], default_region: str | None
) -> tuple[list[_Item], list[tuple[int, Problem]]]:
    """Check each item on its own; return them and the problems found, by item index."""
    problems: list[tuple[int, Problem]] = []
    out: list[_Item] = []
    for index, (item, loc) in enumerate(zip(items, where, strict=True)):
        x = _Item(index, loc, item, None)
        if item.to is not None and item.to.strip():
            try:
                x.phone = _normalize(item.to, item.region or default_region)
            except ValueError as exc:
                problems.append((index, Problem(_at(loc, "to"), str(exc))))
                x.unknown = True
        elif not (item.external_id or "").strip():
            problems.append(
                (
                    index,
                    Problem(_at(loc, "to"), "give the recipient's phone (to) or an external_id"),
                )
            )
            x.unknown = True
        if item.text is not None and not item.text.strip():
            problems.append((index, Problem(_at(loc, "text"), "text is empty (leave it out to "
                                            "use the campaign's template)")))  # fmt: skip
        if item.client_ref is not None and len(item.client_ref) > MAX_CLIENT_REF:
            problems.append(
                (index, Problem(_at(loc, "client_ref"), f"over {MAX_CLIENT_REF} characters"))
            )
        out.append(x)
    return out, problems


def _raise(problems: list[Problem], what: str) -> None:
    if not problems:
        return
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems[:10])
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    raise InvalidInput(
        f"{len(problems)} invalid {what}(s), nothing was wrapped: {detail}{more}",
        field=problems[0].field,
        problems=problems,
    )


def _resolve_contacts(
    wraps: WrapStore, workspace: Workspace, checked: list[_Item]
) -> list[tuple[int, Problem]]:
    """Find each item's contact (by phone, else by external id); return the problems (an
    external id that names no contact, or several), by item index."""
    by_phone = wraps.contacts_by_phone(
        workspace.id, sorted({x.phone for x in checked if x.phone is not None})
    )
    by_ext_items = [x for x in checked if x.phone is None and not x.unknown]
    ext_ids = sorted({(x.item.external_id or "").strip() for x in by_ext_items})
    by_ext = wraps.contacts_by_external_id(workspace.id, ext_ids) if ext_ids else {}
    problems: list[tuple[int, Problem]] = []
    for x in checked:
        if x.phone is not None:
            x.contact = by_phone.get(x.phone)
    for x in by_ext_items:
        ext = (x.item.external_id or "").strip()
        found = by_ext.get(ext, [])
        if len(found) == 1:
            x.contact = found[0]
            x.phone = found[0].phone
            continue
        message = (
            f"no contact has the external id {ext!r}; give `to` (a phone) to create one"
            if not found
            else f"{len(found)} contacts have the external id {ext!r}; give `to` instead"
        )
        problems.append((x.index, Problem(_at(x.loc, "external_id"), message)))
    return problems


def _campaign_for(
    store: Store,
    workspace: Workspace,
    ref: str | CampaignSpec,
    first_text: str | None,
    now_us: int,
    field: str,
) -> Campaign:
    if isinstance(ref, str):
        try:
            cp = campaigns.get_campaign(store, workspace, ref)
        except NotFound as exc:
            raise NotFound(exc.message, field=field) from None
    else:
        cp = _campaign_from_spec(store, workspace, ref, first_text, now_us, field)
    if cp.status not in WRAPPABLE:
        raise _not_wrappable(cp, field)
    return cp


def _not_wrappable(cp: Campaign, field: str = "campaign") -> Conflict:
    return Conflict(
        f"campaign {cp.slug!r} is {cp.status} through clicktrail's own sender and cannot be "
        "wrapped into: use a draft or wrap-only campaign",
        field=field,
    )


def _campaign_from_spec(
    store: Store,
    workspace: Workspace,
    spec: CampaignSpec,
    first_text: str | None,
    now_us: int,
    field: str,
) -> Campaign:
    def prefixed(exc: InvalidInput) -> InvalidInput:
        sub = exc.field or "name"
        return InvalidInput(exc.message, field=f"{field}/{sub}", problems=exc.problems)

    try:
        slug = check_slug(spec.slug, "campaign slug") if spec.slug else slugify(spec.name)
    except InvalidInput as exc:
        raise prefixed(exc) from None
    existing = store.find_campaign(workspace.id, slug)
    if existing is not None:
        _check_same(store, existing, spec, field)
        return existing
    template = spec.template
    if template is None:
        if first_text is None:
            raise InvalidInput(
                "a new campaign needs a template, or a text in its first item",
                field=f"{field}/template",
            )
        template = first_text.replace("{", "{{").replace("}", "}}")
    try:
        return campaigns.create_campaign(
            store, workspace, name=spec.name, template=template, slug=slug,
            domain_host=spec.domain, link_roles=spec.link_roles, link_utm=spec.link_utm,
            options=spec.options, now_us=now_us,
        )  # fmt: skip
    except InvalidInput as exc:
        raise prefixed(exc) from None
    except NotFound as exc:
        raise NotFound(exc.message, field=f"{field}/{exc.field or 'domain'}") from None
    except Conflict:
        # Another call created it meanwhile.
        found = store.find_campaign(workspace.id, slug)
        if found is None:
            raise
        _check_same(store, found, spec, field)
        return found


def _check_same(store: Store, cp: Campaign, spec: CampaignSpec, field: str) -> None:
    """Raise `Conflict` when `spec` asks for other options than campaign `cp` has."""
    differs = []
    if spec.options != cp.options:
        differs.append("options")
    if spec.domain is not None:
        host = store.get_domain(cp.domain_id).host
        if spec.domain.lower().rstrip(".") != host:
            differs.append(f"domain ({host})")
    if differs:
        raise Conflict(
            f"campaign {cp.slug!r} exists with other {', '.join(differs)}; pass its slug as "
            "the campaign to use it as it is, or choose another slug",
            field=field,
        )


def _wrap(
    store: Store,
    wraps: WrapStore,
    workspace: Workspace,
    cp: Campaign,
    checked: list[_Item],
    status: Status,
    token_factory: Callable[[], str],
) -> tuple[WrapOutcome, list[PendingMessage], list[ContactInput], dict[int, str]]:
    """Return the outcome, the messages to store, the contacts and links to create."""
    domain_base = store.get_domain(cp.domain_id).base_url
    links = {lk.index: lk for lk in cp.links}
    campaign_template: Template | None = None
    # Marketing batches often share one text: parse each distinct text once.
    parsed: dict[str, Template] = {}
    keys = sorted(
        {(x.contact.id, x.item.client_ref or "") for x in checked if x.contact is not None}
    )
    stored = wraps.wrapped_messages(cp.id, keys) if keys else {}
    outcome = WrapOutcome(cp, [])
    pending: list[PendingMessage] = []
    new_contacts: dict[str, ContactInput] = {}
    new_links: dict[int, str] = {}
    # Items of this call with the same recipient and client_ref share one message.
    in_call: dict[tuple[str, str], tuple[str, WrapResult]] = {}
    problems: list[Problem] = []
    conflicts: list[Problem] = []
    for x in checked:
        item, phone = x.item, x.phone
        assert phone is not None
        ref = item.client_ref or ""
        ext = x.contact.external_id if x.contact else (item.external_id or None)
        if x.contact is not None and x.contact.opted_out:
            outcome.items.append(WrapResult(x.index, phone, ext, opted_out=True))
            outcome.opted_out += 1
            continue
        if item.text is not None:
            digest = _digest("text", item.text)
        else:
            digest = _digest("template", cp.template)
        twin = in_call.get((phone, ref))
        if twin is not None:
            if twin[0] != digest:
                problems.append(
                    Problem(
                        _at(x.loc, "client_ref"),
                        f"same recipient and client_ref {ref!r} as item {twin[1].index} "
                        "with another text",
                    )
                )
                continue
            outcome.items.append(_replace_index(twin[1], x.index))
            outcome.existing += 1
            continue
        old = stored.get((x.contact.id, ref)) if x.contact is not None else None
        if old is not None:
            if old.text_digest is not None and old.text_digest != digest:
                conflicts.append(
                    Problem(
                        _at(x.loc, "client_ref"),
                        f"client_ref {ref!r} was wrapped for this recipient with another text "
                        f"(message {old.public_id})",
                    )
                )
                continue
            result = WrapResult(
                x.index, phone, ext, False, False, old.public_id, old.body, old.encoding,
                old.segments, old.status,
                tuple(WrappedLink(i, tok, domain_base + tok, dest) for tok, i, dest in old.tokens),
            )  # fmt: skip
            outcome.items.append(result)
            outcome.existing += 1
            in_call[(phone, ref)] = (digest, result)
            continue
        # A new message.
        if x.contact is not None:
            values = x.contact.field_values()
        else:
            contact = new_contacts.get(phone)
            if contact is None:
                contact = new_contacts[phone] = ContactInput(
                    phone, (item.external_id or "").strip() or None,
                    (item.first_name or "").strip() or None,
                )  # fmt: skip
            values = Contact(0, workspace.id, phone, contact.external_id, contact.first_name,
                             {}).field_values()  # fmt: skip
            ext = contact.external_id
        if item.text is not None:
            template = parsed.get(item.text) or parsed.setdefault(
                item.text, literal_template(item.text)
            )
        else:
            if campaign_template is None:
                campaign_template = parse_template(cp.template)
            template = campaign_template
        tokens: list[tuple[str, int, str | None]] = []
        shown: list[WrappedLink] = []
        urls: list[str] = []
        for spec in template.links:
            tok = token_factory()
            link = links.get(spec.index)
            if item.text is None:
                dest = spec.destination(values) if spec.is_personalized else None
                known_url = link.url if link else spec.raw
            else:
                known_url = link.url if link else new_links.setdefault(spec.index, spec.raw)
                dest = spec.raw if spec.raw != known_url else None
            tokens.append((tok, spec.index, dest))
            url = domain_base + tok
            urls.append(url)
            shown.append(WrappedLink(spec.index, tok, url, dest if dest is not None else known_url))
        body, info = encode_message(template, values, urls, cp.options)
        message = PendingMessage(
            new_public_id("msg"), x.contact.id if x.contact else None, phone, ref, digest,
            body, info.encoding, info.segments, tuple(tokens),
        )  # fmt: skip
        pending.append(message)
        result = WrapResult(
            x.index, phone, ext, False, True, message.public_id, body, info.encoding,
            info.segments, status.value, tuple(shown),
        )  # fmt: skip
        outcome.items.append(result)
        outcome.created += 1
        in_call[(phone, ref)] = (digest, result)
    _raise(problems, "item")
    if conflicts:
        raise Conflict(
            f"{len(conflicts)} item(s) reuse a client_ref for another text; nothing was "
            f"wrapped: {conflicts[0].field}: {conflicts[0].message}",
            field=conflicts[0].field,
            problems=conflicts,
        )
    return outcome, pending, list(new_contacts.values()), new_links


def _replace_index(result: WrapResult, index: int) -> WrapResult:
    return replace(result, index=index)


# -- JSON lines (the CLI) -----------------------------------------------------------------------

_ITEM_FIELDS = ("to", "external_id", "region", "first_name", "text", "client_ref")


def items_from_lines(data: bytes, name: str) -> tuple[list[WrapItem], list[str]]:
    """Read wrap items from JSON lines: one object per line with the fields of `WrapItem`
    (``to``, ``external_id``, ``region``, ``first_name``, ``text``, ``client_ref``).

    Returns the items and where each came from (``line N``); blank lines are skipped. Raises
    `InvalidInput` naming every bad line (not JSON, not an object, an unknown field, a value
    that is not a string).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{name} line {line}: not UTF-8 text", field=f"line {line}") from None
    items: list[WrapItem] = []
    where: list[str] = []
    problems: list[Problem] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        loc = f"line {no}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(loc, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(loc, "expected a JSON object with to and text"))
            continue
        unknown = sorted(set(obj) - set(_ITEM_FIELDS))
        if unknown:
            problems.append(
                Problem(_at(loc, unknown[0]), f"unknown field; fields: {', '.join(_ITEM_FIELDS)}")
            )
            continue
        bad = [k for k, v in obj.items() if v is not None and not isinstance(v, str)]
        if bad:
            problems.append(Problem(_at(loc, bad[0]), "must be a string"))
            continue
        items.append(WrapItem(**{k: obj.get(k) for k in _ITEM_FIELDS}))
        where.append(loc)
    if problems:
        detail = "\n".join(f"  {p.field}: {p.message}" for p in problems[:20])
        raise InvalidInput(
            f"{name}: {len(problems)} bad line(s), nothing was wrapped:\n{detail}",
            field=problems[0].field,
            problems=problems,
        )
    if not items:
        raise InvalidInput(f"{name} holds no item to wrap", field=name)
    return items, where
