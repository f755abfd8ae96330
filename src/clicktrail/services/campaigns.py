"""Campaigns: create from a template, preview the wrapped text (sending them: services/sending/)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from clicktrail.domain.destinations import redirect_location
from clicktrail.domain.errors import InvalidInput, NotFound
from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import (
    LINK_MACROS,
    SUB_MACROS,
    Campaign,
    CampaignOptions,
    Contact,
    Domain,
    LinkRow,
    Workspace,
)
from clicktrail.domain.segments import Segment
from clicktrail.domain.slugs import check_slug, slugify
from clicktrail.domain.sms import SmsInfo, analyze, smart_encode
from clicktrail.domain.template import (
    STANDARD_FIELDS,
    Field,
    check_fields,
    parse_template,
    render_with_spans,
)
from clicktrail.domain.variants import VARIANT_MACRO, Variant
from clicktrail.domain.wrapping import encode_message, wrap_for_contact
from clicktrail.services.contacts import ContactStore
from clicktrail.services.holdouts import check_stratify
from clicktrail.services.variants import check_variant_templates, variant_spec

ROLES = ("cta", "optout", "other")
BATCH = 1000


class CampaignStore(Protocol):
    """Campaigns and their links as services need them (`storage.campaigns`)."""

    def create_campaign(
        self,
        *,
        public_id: str,
        workspace_id: int,
        slug: str,
        name: str,
        template: str,
        domain_id: int,
        list_id: int | None,
        links: Sequence[tuple[int, str, str, dict[str, str]]],
        now_us: int,
        options: CampaignOptions | None = None,
        segment_id: int | None = None,
    ) -> Campaign:
        """Store a draft campaign and its links (index, URL, role, UTM overrides), its
        audience a list, a segment or the workspace; raises `Conflict` if the workspace has a
        campaign with this slug."""
        ...

    def update_subs(self, campaign_id: int, changes: Mapping[str, str | None]) -> Campaign:
        """Set (a value) or clear (None) some of the campaign's ``subs``, the others kept, in
        one transaction; return the campaign as it is now."""
        ...

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None:
        """Return the workspace's campaign whose slug or public id is `ref`."""
        ...

    def list_campaigns(self, workspace_id: int) -> list[Campaign]:
        """Return the workspace's campaigns, newest first."""
        ...

    def set_campaign_status(self, campaign_id: int, status: str, now_us: int | None = None) -> None:
        """Set the campaign's status (and its sent time when given)."""
        ...


class DomainStore(Protocol):
    """The short domains a campaign is created and wrapped on: the part of
    `services.workspaces.WorkspaceStore` campaigns read (that module imports API keys, which
    import this one)."""

    def list_domains(self, workspace_id: int) -> list[Domain]:
        """Return the workspace's domains, oldest first."""
        ...

    def get_domain(self, domain_id: int) -> Domain:
        """Return the domain with this id."""
        ...


class CampaignRepos(Protocol):
    """What the use cases of a campaign as a whole need (create, preview, wrap, send), one
    repository per area: its campaigns, the workspace's contacts (attribute names, lists, the
    audience) and its short domains (`bootstrap.Container` has them all)."""

    @property
    def campaigns(self) -> CampaignStore:
        """Campaigns and their links."""
        ...

    @property
    def contacts(self) -> ContactStore:
        """The workspace's contacts and lists."""
        ...

    @property
    def workspaces(self) -> DomainStore:
        """The workspace's short domains."""
        ...


def create_campaign(
    repos: CampaignRepos,
    workspace: Workspace,
    *,
    name: str,
    template: str,
    now_us: int,
    slug: str | None = None,
    domain_host: str | None = None,
    list_name: str | None = None,
    link_roles: Mapping[int, str] | None = None,
    link_utm: Mapping[int, Mapping[str, str]] | None = None,
    options: CampaignOptions | None = None,
    segment: Segment | None = None,
    variants: Sequence[Variant] | None = None,
    variant_seed: int | None = None,
) -> Campaign:
    """Create a draft campaign; its audience is list `list_name`, `segment` (a sendable one:
    `services.segments.campaign_audience`) or the workspace's contacts. With `variants` (an
    A/B test: docs/experiments.md) the text is each variant's, `template` stays empty, and the
    campaign's links are the first variant's positions.

    Raises `InvalidInput` for an empty or malformed template, an unknown placeholder, an
    unknown link index or role, a list and a segment together, a segment with a holdout;
    `NotFound` for an unknown domain or list; `Conflict` for a name already used.
    """
    if not name.strip():
        raise InvalidInput("campaign name is empty", field="name")
    slug = check_slug(slug, "campaign slug") if slug else slugify(name)
    fields = set(STANDARD_FIELDS) | set(LINK_MACROS) | repos.contacts.attribute_names(workspace.id)
    spec = None
    if variants is not None or variant_seed is not None:
        if template.strip():
            raise InvalidInput(
                "give the text of each variant, not a template as well", field="template"
            )
        spec = variant_spec(variants or (), variant_seed)
        check_variant_templates(spec, fields)
        template = spec.variants[0].template
        fields.add(VARIANT_MACRO)
    if not template.strip():
        raise InvalidInput("template is empty", field="template")
    parsed = parse_template(template)
    check_fields(parsed, fields)
    if any(isinstance(p, Field) and p.name == "click_id" for p in parsed.parts):
        raise InvalidInput(
            "template: {click_id} belongs in a link's URL (the redirect fills it with each "
            "click's id); in the text it would be sent as written",
            field="template",
        )
    if segment is not None and list_name is not None:
        raise InvalidInput("give a list or a segment as the audience, not both", field="segment")
    if segment is not None and options is not None and options.holdout is not None:
        raise InvalidInput(
            "a holdout is drawn from a list or the workspace; a segment audience cannot have "
            "one yet", field="holdout",
        )  # fmt: skip
    if segment is not None and (segment.workspace_id != workspace.id or not segment.sendable):
        raise InvalidInput("the segment cannot be this campaign's audience", field="segment")
    domain = _pick_domain(repos.workspaces, workspace, domain_host)
    list_id = None
    if list_name is not None:
        list_id = repos.contacts.find_list(workspace.id, list_name)
        if list_id is None:
            raise NotFound(f"contact list {list_name!r} not found", field="list")
    roles = dict(link_roles or {})
    for idx, role in roles.items():
        if not 0 <= idx < len(parsed.links):
            raise InvalidInput(
                f"link {idx + 1} does not exist: the template has {len(parsed.links)} link(s)",
                field="link_role",
            )
        if role not in ROLES:
            raise InvalidInput(
                f"link role {role!r} is not one of {', '.join(ROLES)}", field="link_role"
            )
    link_utm = dict(link_utm or {})
    for idx, params in link_utm.items():
        if not 0 <= idx < len(parsed.links):
            raise InvalidInput(
                f"link {idx + 1} does not exist: the template has {len(parsed.links)} link(s)",
                field="link_utm",
            )
        _check_params(params, "link_utm")
    options = replace(options or CampaignOptions(), variants=spec)
    _check_params(options.utm, "utm")
    check_subs(options.subs)
    if options.click_id_param and not _PARAM.fullmatch(options.click_id_param):
        raise InvalidInput(
            f"click id parameter {options.click_id_param!r} must be letters, digits, '_' or '-'",
            field="click_id_param",
        )
    links = [
        (lk.index, lk.raw, roles.get(lk.index, "cta"), dict(link_utm.get(lk.index, {})))
        for lk in parsed.links
    ]
    if options.shift_table is not None:
        analyze("", shift_table=options.shift_table)  # raises InvalidInput naming the table
    if options.holdout is not None:
        options.holdout.check()
        check_stratify(options.holdout, repos.contacts.attribute_names(workspace.id))
    return repos.campaigns.create_campaign(
        public_id=new_public_id("cmp", 12),
        workspace_id=workspace.id,
        slug=slug,
        name=name.strip(),
        template=template,
        domain_id=domain.id,
        list_id=list_id,
        links=links,
        now_us=now_us,
        options=options,
        segment_id=None if segment is None else segment.id,
    )


_PARAM = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SUB = 200


def check_subs(subs: Mapping[str, str]) -> None:
    """Raise `InvalidInput` (field ``subs``) unless `subs` maps some of sub1…sub5 to text of at
    most `MAX_SUB` characters without control characters."""
    for name, value in subs.items():
        if name not in SUB_MACROS:
            raise InvalidInput(f"subs: {name!r} is not one of sub1 … sub5", field="subs")
        if not isinstance(value, str) or len(value) > MAX_SUB or not value.isprintable():
            raise InvalidInput(
                f"subs: {name} must be at most {MAX_SUB} printable characters", field="subs"
            )


def set_subs(
    store: CampaignStore, workspace: Workspace, ref: str, changes: Mapping[str, str | None]
) -> Campaign:
    """Change some of campaign `ref`'s link macros ``{sub1}`` … ``{sub5}``: a value sets one,
    None or ``""`` clears it, the others stay. Messages wrapped from then on carry the new
    values; messages already wrapped keep theirs (a send already running keeps the values it
    started with). Raises `InvalidInput` (field ``subs``) for no change, an unknown name or a
    bad value; `NotFound` for an unknown campaign."""
    if not changes:
        raise InvalidInput("subs: give at least one of sub1 … sub5 to change", field="subs")
    normalized = {name: value or None for name, value in changes.items()}
    check_subs({name: value or "" for name, value in normalized.items()})
    campaign = get_campaign(store, workspace, ref)
    return store.update_subs(campaign.id, normalized)


def _check_params(params: Mapping[str, str], field: str) -> None:
    for name in params:
        if not _PARAM.fullmatch(name):
            raise InvalidInput(
                f"{field}: parameter name {name!r} must be 1-64 letters, digits, '_', '.' or '-'",
                field=field,
            )


def _pick_domain(store: DomainStore, workspace: Workspace, host: str | None) -> Domain:
    domains = store.list_domains(workspace.id)
    if host is not None:
        for d in domains:
            if d.host == host.lower().rstrip("."):
                return d
        raise NotFound(
            f"domain {host!r} is not registered in workspace {workspace.slug!r}", field="domain"
        )
    if not domains:
        raise NotFound(
            "this workspace has no short domain yet: add one with `clicktrail domain add HOST`",
            field="domain",
        )
    return domains[0]


def get_campaign(store: CampaignStore, workspace: Workspace, ref: str) -> Campaign:
    """Return the campaign named `ref` (slug or id). Raises `NotFound` naming it."""
    campaign = store.find_campaign(workspace.id, ref)
    if campaign is None:
        known = ", ".join(c.slug for c in store.list_campaigns(workspace.id)[:10]) or "none yet"
        raise NotFound(
            f"campaign {ref!r} not found in workspace {workspace.slug!r} (campaigns: {known})",
            field="campaign",
        )
    return campaign


@dataclass(frozen=True)
class Cost:
    """What one rendering of the campaign costs as SMS."""

    encoding: str
    segments: int
    units: int

    @classmethod
    def of(cls, info: SmsInfo) -> Cost:
        """Return the cost of an analyzed text."""
        return cls(info.encoding, info.segments, info.units)


@dataclass(frozen=True)
class Preview:
    """The campaign as one recipient would get it, and what tracking costs.

    * `template` — the template as written, placeholders as they stand, links not wrapped;
    * `untracked` / `cost` — this recipient's message without and with tracked links;
    * `worst_case` — with the costliest value of each field over the audience, tracked;
    * `smart_encoding` — what smart encoding changes in this message (a suggestion when the
      campaign does not use it; applied when it does).
    """

    contact_phone: str | None
    body: str
    cost: Cost
    template: Cost
    untracked: Cost
    worst_case: Cost
    smart_encoding: dict[str, object]
    links: list[dict[str, str]]
    warnings: list[str]


def preview_campaign(
    repos: CampaignRepos,
    workspace: Workspace,
    campaign: Campaign,
    contact_ref: str | None = None,
    variant: str | None = None,
) -> Preview:
    """Render the campaign for one contact (the given one, else the first of the audience),
    with its cost before and after tracking and the worst case over the audience; for a
    campaign with variants, variant `variant` (default: the first).

    The tokens shown are freshly drawn and not stored. Raises `NotFound` for an unknown contact
    or variant.
    """
    text = campaign.template
    if variant is not None:
        found_variant = campaign.options.variants and campaign.options.variants.named(variant)
        if not found_variant:
            raise NotFound(
                f"campaign {campaign.slug!r} has no variant {variant!r}", field="variant"
            )
        text = found_variant.template
    template = parse_template(text)
    domain = repos.workspaces.get_domain(campaign.domain_id)
    opts = campaign.options
    if contact_ref:
        contact = repos.contacts.find_contact(workspace.id, contact_ref)
        if contact is None:
            raise NotFound(f"contact {contact_ref!r} not found", field="contact")
    else:
        found = repos.contacts.audience(workspace.id, campaign.list_id, 0, 1)
        contact = found[0] if found else Contact(0, workspace.id, "+10000000000", None, None, {})
    wrapped = wrap_for_contact(template, campaign, domain, contact, variant=variant)
    values = {**contact.field_values(), **campaign.macro_values(), **wrapped.macros}
    raw_links = [lk.raw for lk in template.links]
    sample_urls = [domain.base_url + t[0] for t in wrapped.tokens]
    _, untracked = encode_message(template, values, raw_links, opts)
    template_cost = analyze(text, shift_table=opts.shift_table)
    candidates = repos.contacts.longest_values(workspace.id, campaign.list_id) or [values]
    worst = max(
        (encode_message(template, vs, sample_urls, opts)[1] for vs in candidates),
        key=lambda c: (c.segments, c.encoding != "GSM-7", c.units),
    )
    info = analyze(wrapped.body, shift_table=opts.shift_table)

    rendered, spans = render_with_spans(template, values, sample_urls)
    smart = smart_encode(rendered, protected=spans, shift_table=opts.shift_table)
    suggestion: dict[str, object] = {
        "enabled": opts.smart_encoding,
        "would_apply": smart.applied,
        "segments": smart.after.segments,
        "encoding": smart.after.encoding,
        "changes": [
            {"original": c.original, "replacement": c.replacement, "reason": c.reason}
            for c in smart.changes
        ],
        "blocking": list(smart.unencodable),
    }

    warnings: list[str] = []
    for name in sorted(template.fields_without_fallback):
        if name in SUB_MACROS and not values.get(name):
            warnings.append(f"the campaign sets no {name}: {{{name}}} renders empty")
        elif not values.get(name):
            warnings.append(
                f"this contact has no {name}: the placeholder renders empty "
                f"(give a fallback: {{{name}|…}})"
            )
    if info.segments > untracked.segments:
        warnings.append(
            f"tracking adds {info.segments - untracked.segments} segment(s) "
            f"({untracked.segments} → {info.segments})"
        )
    if info.encoding != untracked.encoding:
        warnings.append(f"tracking forces {info.encoding}")
    if worst.segments > info.segments:
        warnings.append(
            f"personalization can add segments: the costliest recipient gets {worst.segments} "
            f"segment(s) ({worst.encoding})"
        )
    if worst.encoding != info.encoding:
        warnings.append(f"some recipients' values force {worst.encoding}")
    if smart.applied and not opts.smart_encoding:
        warnings.append(
            f"smart encoding would save {info.segments - smart.after.segments} segment(s) per "
            "message: turn the campaign's smart encoding on"
        )
    if not template.links:
        warnings.append("the template has no link: nothing will be tracked")
    links = [
        {
            "index": str(lk.index + 1),
            "role": lk.role,
            "url": lk.url,
            "short_url": url,
            "destination": _shown_location(d, campaign, lk),
        }
        for lk, url, d in zip(campaign.links, sample_urls, wrapped.destinations, strict=True)
    ]
    return Preview(
        contact.phone if contact.id else None,
        wrapped.body,
        Cost.of(info),
        Cost.of(template_cost),
        Cost.of(untracked),
        Cost.of(worst),
        suggestion,
        links,
        warnings,
    )


def _shown_location(url: str, campaign: Campaign, link: LinkRow) -> str:
    """The Location a click gets, with ``{click_id}`` standing for each click's id."""
    opts = campaign.options
    location, head, tail, add = redirect_location(
        url, opts.utm_params(campaign.slug, link.utm), opts.click_id_param
    )
    return head + "{click_id}" + tail if add else location
