"""`clicktrail campaign create|list|preview` (sending a campaign: cli/sending.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clicktrail.cli.holdout import HoldoutOpt, HoldoutSeedOpt, HoldoutStratifyOpt, parse_share
from clicktrail.cli.options import (
    JsonOpt,
    WorkspaceOpt,
    container,
    err,
    out,
    print_json,
    workspace_of,
)
from clicktrail.cli.variants import (
    SharesOpt,
    VariantOpt,
    VariantSeedOpt,
    parse_variants,
    show_variants,
)
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import CampaignOptions
from clicktrail.services import (
    campaigns,
    segments,
    variants,
)
from clicktrail.services.clock import now_us
from clicktrail.services.holdouts import holdout_spec

app = typer.Typer(help="Campaigns: create, preview, send.", no_args_is_help=True)


def _parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} {v!r}: expected KEY=VALUE", field=option.lstrip("-"))
        pairs[key.strip()] = value.strip()
    return pairs


def _parse_link_utm(values: list[str] | None) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for v in values or []:
        idx, sep, pair = v.partition(":")
        if not sep or not idx.strip().isdigit() or int(idx) < 1:
            raise InvalidInput(
                f"--link-utm {v!r}: expected N:KEY=VALUE with N the link number from 1",
                field="link_utm",
            )
        out.setdefault(int(idx) - 1, {}).update(_parse_pairs([pair], "--link-utm"))
    return out


def _parse_roles(values: list[str] | None) -> dict[int, str]:
    roles: dict[int, str] = {}
    for v in values or []:
        idx, sep, role = v.partition("=")
        if not sep or not idx.strip().isdigit() or int(idx) < 1:
            raise InvalidInput(
                f"--link-role {v!r}: expected N=ROLE with N the link number from 1, e.g. 2=optout",
                field="link_role",
            )
        roles[int(idx) - 1] = role.strip()
    return roles


@app.command("create")
def campaign_create(
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    template: Annotated[str | None, typer.Option(help="Message text with {placeholders}.")] = None,
    template_file: Annotated[
        Path | None, typer.Option(help="Read the message text from a file (UTF-8).")
    ] = None,
    slug: Annotated[str | None, typer.Option(help="Short name (default: from the name).")] = None,
    domain: Annotated[str | None, typer.Option(help="Short domain (default: the first).")] = None,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Send to this list (default: all contacts).")
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option(help="Send to this segment instead (docs/segments.md): engaged, at-risk… "),
    ] = None,
    link_role: Annotated[
        list[str] | None, typer.Option(help="N=ROLE for link N: cta (default), optout, other.")
    ] = None,
    smart_encoding: Annotated[
        bool,
        typer.Option(
            "--smart-encoding",
            help="Replace look-alike characters (curly quotes, dashes…) when it saves segments.",
        ),
    ] = False,
    utm: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE added to every destination (overrides the defaults utm_source=sms, "
            "utm_medium=sms, utm_campaign=<slug>; an empty VALUE removes one). Repeatable."
        ),
    ] = None,
    no_utm: Annotated[
        bool, typer.Option("--no-utm", help="Add no UTM parameters to destinations.")
    ] = False,
    link_utm: Annotated[
        list[str] | None,
        typer.Option(help="N:KEY=VALUE for link N only, e.g. 1:utm_content=hero. Repeatable."),
    ] = None,
    click_id_param: Annotated[
        str,
        typer.Option(help="Query parameter carrying each click's id; '' adds none."),
    ] = "ct_cid",
    sub: Annotated[
        list[str] | None,
        typer.Option(
            help="subN=VALUE: the value of the link macro {subN} (sub1 … sub5), e.g. "
            "sub1=spring. Repeatable (docs/conversions.md)."
        ),
    ] = None,
    shift_table: Annotated[
        str | None,
        typer.Option(
            help="3GPP national language shift table: turkish, spanish, portuguese, bengali, "
            "gujarati, hindi, kannada, malayalam, oriya, punjabi, tamil, telugu or urdu."
        ),
    ] = None,
    holdout: HoldoutOpt = None,
    holdout_seed: HoldoutSeedOpt = None,
    holdout_stratify: HoldoutStratifyOpt = None,
    variant: VariantOpt = None,
    shares: SharesOpt = None,
    variant_seed: VariantSeedOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a campaign from a message template, or A/B variants (docs/experiments.md)."""
    ab = parse_variants(variant, shares)
    if ab is not None and template is None and template_file is None:
        template = ""
    if (template is None) == (template_file is None):
        raise InvalidInput(
            "give the message with --template TEXT or --template-file FILE", field="template"
        )
    if template_file is not None:
        try:
            template = template_file.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"{template_file}: cannot read as UTF-8 text: {exc}", field="template_file"
            ) from None
    assert template is not None
    c = container()
    ws = workspace_of(c, workspace)
    seg = None if segment is None else segments.campaign_audience(c, ws, segment, now_us())
    cp = campaigns.create_campaign(
        c, ws, name=name, template=template, slug=slug, segment=seg,
        domain_host=domain, list_name=list_name, link_roles=_parse_roles(link_role),
        link_utm=_parse_link_utm(link_utm),
        options=CampaignOptions(
            smart_encoding, shift_table, not no_utm, _parse_pairs(utm, "--utm"), click_id_param,
            _parse_pairs(sub, "--sub"),
            holdout_spec(parse_share(holdout), holdout_seed, holdout_stratify),
        ),
        now_us=now_us(), variants=ab, variant_seed=variant_seed,
    )  # fmt: skip
    out.print(f"created campaign [bold]{cp.slug}[/] ({cp.public_id}) with {len(cp.links)} link(s)")
    for lk in cp.links:
        out.print(f"  link {lk.index + 1} [{lk.role}]: {lk.url}", markup=False)
    for vc in variants.variant_costs(cp):
        out.print(f"  variant {vc.name} (share {vc.share}): {vc.encoding}, {vc.segments} "
                  "segment(s) as written", markup=False)  # fmt: skip


@app.command("update")
def campaign_update(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    sub: Annotated[
        list[str] | None,
        typer.Option(
            help="subN=VALUE: set the link macro {subN} (sub1 … sub5); subN= clears it. "
            "Repeatable; the others stay (docs/conversions.md)."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a campaign's link macros {sub1} … {sub5}. Messages wrapped from then on carry
    the new values; messages already wrapped keep theirs."""
    c = container()
    cp = campaigns.set_subs(
        c.campaigns, workspace_of(c, workspace), campaign, _parse_pairs(sub, "--sub")
    )
    if as_json:
        print_json({"id": cp.public_id, "slug": cp.slug, "subs": cp.options.subs})
        return
    subs = ", ".join(f"{k}={v}" for k, v in sorted(cp.options.subs.items())) or "none"
    out.print(f"campaign {cp.slug}: subs {subs}", markup=False)


@app.command("list")
def campaign_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List campaigns, newest first."""
    c = container()
    items = c.campaigns.list_campaigns(workspace_of(c, workspace).id)
    if as_json:
        print_json(
            [{"id": x.public_id, "slug": x.slug, "name": x.name, "status": x.status} for x in items]
        )
        return
    table = Table("slug", "name", "status", "links", "id")
    for x in items:
        table.add_row(x.slug, x.name, x.status, str(len(x.links)), x.public_id)
    out.print(table)


@app.command("preview")
def campaign_preview(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    contact: Annotated[str | None, typer.Option(help="Phone or external id of a contact.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the wrapped message for one recipient and what tracking costs."""
    c = container()
    ws = workspace_of(c, workspace)
    p = campaigns.preview_campaign(
        c, ws, campaigns.get_campaign(c.campaigns, ws, campaign), contact
    )
    if as_json:
        print_json(dataclasses.asdict(p))
        return
    out.print(f"[dim]to {p.contact_phone or '(no contact yet)'}:[/]")
    out.print(p.body, markup=False)
    t = Table("", "encoding", "segments", "units")
    for label, cost in [
        ("template as written", p.template),
        ("this message, untracked", p.untracked),
        ("this message, tracked", p.cost),
        ("worst case over the audience", p.worst_case),
    ]:
        t.add_row(label, cost.encoding, str(cost.segments), str(cost.units))
    out.print(t)
    for lk in p.links:
        out.print(
            f"  link {lk['index']} [{lk['role']}] {lk['short_url']} → {lk['destination']}",
            markup=False,
        )
    changes = p.smart_encoding["changes"]
    if isinstance(changes, list) and changes:
        state = "applied" if p.smart_encoding["enabled"] else "suggested"
        out.print(f"smart encoding ({state}):", markup=False)
        for ch in changes:
            out.print(
                f"  {ch['original']!r} → {ch['replacement']!r}  ({ch['reason']})", markup=False
            )
    for w in p.warnings:
        err.print(f"[yellow]warning:[/] {w}")


app.command("variants")(show_variants)
