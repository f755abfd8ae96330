"""One wrap call, all or nothing (the rules: the package docstring): check every item, find
its contact, find or create the campaign, wrap each message with fresh tokens and store them
all in one transaction, drawing new tokens when one was taken meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound, Problem
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, Contact, ContactInput, Workspace
from clicktrail.domain.slugs import check_slug, slugify
from clicktrail.domain.status import Status
from clicktrail.domain.template import Template, parse_template
from clicktrail.domain.tokens import new_token
from clicktrail.domain.wrapping import encode_message, item_field, literal_template, text_digest
from clicktrail.services import campaigns
from clicktrail.services.campaigns import CampaignRepos
from clicktrail.services.contacts import PHONE_RULES, normalize_phone
from clicktrail.services.wrapping.records import (
    EXTERNAL,
    MAX_CLIENT_REF,
    MAX_ITEMS,
    WRAPPABLE,
    CampaignSpec,
    PendingMessage,
    WrapItem,
    WrapOutcome,
    WrappedLink,
    WrapResult,
    WrapStore,
)

SAVE_RETRIES = 5


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
    repos: CampaignRepos,
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
    cp = _campaign_for(repos, workspace, campaign, first_text, clock(), campaign_field)
    for _attempt in range(SAVE_RETRIES):
        status = Status.SENT if mark_sent else Status.QUEUED
        outcome, pending, new_contacts, new_links = _wrap(
            repos, wraps, workspace, cp, checked, status, token_factory
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
            cp = campaigns.get_campaign(repos.campaigns, workspace, cp.public_id)
            continue
        if not saved:
            raise _not_wrappable(campaigns.get_campaign(repos.campaigns, workspace, cp.public_id))
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
                problems.append((index, Problem(item_field(loc, "to"), str(exc))))
                x.unknown = True
        elif not (item.external_id or "").strip():
            problems.append(
                (
                    index,
                    Problem(
                        item_field(loc, "to"), "give the recipient's phone (to) or an external_id"
                    ),
                )
            )
            x.unknown = True
        if item.text is not None and not item.text.strip():
            empty = "text is empty (leave it out to use the campaign's template)"
            problems.append((index, Problem(item_field(loc, "text"), empty)))
        if item.client_ref is not None and len(item.client_ref) > MAX_CLIENT_REF:
            problems.append(
                (index, Problem(item_field(loc, "client_ref"), f"over {MAX_CLIENT_REF} characters"))
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
        problems.append((x.index, Problem(item_field(x.loc, "external_id"), message)))
    return problems


def _campaign_for(
    repos: CampaignRepos,
    workspace: Workspace,
    ref: str | CampaignSpec,
    first_text: str | None,
    now_us: int,
    field: str,
) -> Campaign:
    if isinstance(ref, str):
        try:
            cp = campaigns.get_campaign(repos.campaigns, workspace, ref)
        except NotFound as exc:
            raise NotFound(exc.message, field=field) from None
    else:
        cp = _campaign_from_spec(repos, workspace, ref, first_text, now_us, field)
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
    repos: CampaignRepos,
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
    existing = repos.campaigns.find_campaign(workspace.id, slug)
    if existing is not None:
        _check_same(repos, existing, spec, field)
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
            repos, workspace, name=spec.name, template=template, slug=slug,
            domain_host=spec.domain, link_roles=spec.link_roles, link_utm=spec.link_utm,
            options=spec.options, now_us=now_us,
        )  # fmt: skip
    except InvalidInput as exc:
        raise prefixed(exc) from None
    except NotFound as exc:
        raise NotFound(exc.message, field=f"{field}/{exc.field or 'domain'}") from None
    except Conflict:
        # Another call created it meanwhile.
        found = repos.campaigns.find_campaign(workspace.id, slug)
        if found is None:
            raise
        _check_same(repos, found, spec, field)
        return found


def _check_same(repos: CampaignRepos, cp: Campaign, spec: CampaignSpec, field: str) -> None:
    """Raise `Conflict` when `spec` asks for other options than campaign `cp` has."""
    differs = []
    if spec.options != cp.options:
        differs.append("options")
    if spec.domain is not None:
        host = repos.workspaces.get_domain(cp.domain_id).host
        if spec.domain.lower().rstrip(".") != host:
            differs.append(f"domain ({host})")
    if differs:
        raise Conflict(
            f"campaign {cp.slug!r} exists with other {', '.join(differs)}; pass its slug as "
            "the campaign to use it as it is, or choose another slug",
            field=field,
        )


def _wrap(
    repos: CampaignRepos,
    wraps: WrapStore,
    workspace: Workspace,
    cp: Campaign,
    checked: list[_Item],
    status: Status,
    token_factory: Callable[[], str],
) -> tuple[WrapOutcome, list[PendingMessage], list[ContactInput], dict[int, str]]:
    """Return the outcome, the messages to store, the contacts and links to create."""
    domain_base = repos.workspaces.get_domain(cp.domain_id).base_url
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
            digest = text_digest("text", item.text)
        else:
            digest = text_digest("template", cp.template)
        twin = in_call.get((phone, ref))
        if twin is not None:
            if twin[0] != digest:
                problems.append(
                    Problem(
                        item_field(x.loc, "client_ref"),
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
                        item_field(x.loc, "client_ref"),
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
            values = {**x.contact.field_values(), **cp.macro_values()}
        else:
            contact = new_contacts.get(phone)
            if contact is None:
                contact = new_contacts[phone] = ContactInput(
                    phone, (item.external_id or "").strip() or None,
                    (item.first_name or "").strip() or None, valid_under=PHONE_RULES,
                )  # fmt: skip
            values = {**Contact(0, workspace.id, phone, contact.external_id,
                                contact.first_name, {}).field_values(), **cp.macro_values()}  # fmt: skip
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
