"""The `clicktrail` command line: thin commands that parse options, call a service, print.

Errors from services are mapped to messages and exit codes here and only here:
invalid input → 2, not found → 3, conflict → 4, unauthorized → 5.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from clicktrail.bootstrap import Container
from clicktrail.cli import attribution as attribution_cli
from clicktrail.cli import bots as bots_cli
from clicktrail.cli import conversions as conversions_cli
from clicktrail.cli import export as export_cli
from clicktrail.cli import keys as keys_cli
from clicktrail.cli import optouts as optouts_cli
from clicktrail.cli import provider as provider_cli
from clicktrail.cli import sending as sending_cli
from clicktrail.cli import sms as sms_cli
from clicktrail.cli import touchpoints as touchpoints_cli
from clicktrail.cli import wrap as wrap_cli
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings, setting_help
from clicktrail.domain.errors import ClicktrailError, InvalidInput
from clicktrail.domain.models import CampaignOptions, Workspace
from clicktrail.domain.report import COUNTED_CLICKS, Provisional, iso_us
from clicktrail.services import (
    attribution,
    bots,
    campaigns,
    contacts,
    listing,
    receipts,
    reports,
    workspaces,
)
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc

# How the contact import's options are written here, for its error messages.
IMPORT_SPELLING = contacts.Spelling(
    skip_invalid="--skip-invalid", encoding="e.g. --encoding latin-1", allow_empty="--allow-empty"
)
EXIT_CODES = {
    "invalid_input": 2,
    "unknown_click": 2,
    "unknown_contact": 2,
    "not_found": 3,
    "conflict": 4,
    "unauthorized": 5,
}


class _Root(TyperGroup):
    """The root command: maps clicktrail errors to a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ClicktrailError as exc:
            if exc.code == "not_found" and exc.field == "workspace":
                # Run from another folder, a command may have opened another database: say which.
                exc.message += f" (database: {load_settings().database_label})"
            fail(exc)


app = typer.Typer(
    cls=_Root,
    help="clicktrail: SMS link tracking and click attribution.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
domain_app = typer.Typer(help="Short domains for tracked links.", no_args_is_help=True)
contacts_app = typer.Typer(help="Recipients.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: create, preview, send.", no_args_is_help=True)
messages_app = typer.Typer(help="Messages and delivery receipts.", no_args_is_help=True)
db_app = typer.Typer(help="Database.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(domain_app, name="domain")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(contacts_app, name="contacts")
app.add_typer(campaign_app, name="campaign")
sending_cli.register(campaign_app)  # send, status, pause, resume, cancel…
app.add_typer(messages_app, name="messages")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(sms_cli.app, name="sms")
app.add_typer(bots_cli.app, name="bots")
app.add_typer(export_cli.app, name="export")
app.add_typer(optouts_cli.app, name="opt-outs")
app.command("wrap")(wrap_cli.wrap)
app.add_typer(provider_cli.app, name="provider")
app.add_typer(conversions_cli.app, name="conversions")
app.add_typer(conversions_cli.secrets_app, name="postback-secret")
app.add_typer(conversions_cli.publishable_app, name="publishable-key")
app.add_typer(touchpoints_cli.app, name="touchpoints")
app.add_typer(attribution_cli.app, name="attribution")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _container() -> Container:
    return Container(load_settings())


def _workspace(c: Container, ref: str | None) -> Workspace:
    return workspaces.resolve_workspace(c.workspaces, ref)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(exc: ClicktrailError) -> NoReturn:
    """Print `exc` for a person and exit with its code."""
    err.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
    raise typer.Exit(EXIT_CODES.get(exc.code, 1))


# -- server -------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8787).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port (default 1; setting: workers)."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a demo workspace if the database is empty.")
    ] = False,
) -> None:
    """Serve short-link redirects and the API (HTTPS when tls_certfile and tls_keyfile are set)."""
    from clicktrail.cli.serve import run_server

    settings = load_settings(overrides={"host": host, "port": port, "workers": workers})
    run_server(settings, demo_mode=demo)


# -- config and db ------------------------------------------------------------------------------


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print every setting with its effective value."""
    settings = load_settings()
    values = {name: getattr(settings, name) for name in setting_help()}
    if as_json:
        _print_json(values)
        return
    table = Table("setting", "value", "environment variable")
    for name, value in values.items():
        table.add_row(name, repr(value), "CLICKTRAIL_" + name.upper())
    out.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database schema (the server also does this at start)."""
    c = _container()
    c.engine  # noqa: B018 - building the engine migrates
    out.print(f"database is up to date: {c.settings.database_label}", markup=False)


# -- workspaces, domains, keys ------------------------------------------------------------------


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Retail'.")],
    slug: Annotated[str | None, typer.Option(help="Short name used on the command line.")] = None,
) -> None:
    """Create a workspace."""
    ws = workspaces.create_workspace(_container().workspaces, name, now_us(), slug=slug)
    out.print(f"created workspace [bold]{ws.slug}[/] ({ws.public_id})")


@workspace_app.command("list")
def workspace_list(as_json: JsonOpt = False) -> None:
    """List workspaces."""
    c = _container()
    items = c.workspaces.list_workspaces()
    if not items and not as_json:
        err.print(f"no workspace yet in {c.settings.database_label}: create one with "
                  "`clicktrail workspace create NAME`", markup=False)  # fmt: skip
        return
    if as_json:
        _print_json(
            [{"id": w.public_id, "slug": w.slug, "name": w.name, "demo": w.is_demo} for w in items]
        )
        return
    table = Table("slug", "name", "id")
    for w in items:
        table.add_row(w.slug, w.name + (" (demo)" if w.is_demo else ""), w.public_id)
    out.print(table)


@domain_app.command("add")
def domain_add(
    host: Annotated[str, typer.Argument(help="Short host, e.g. sms.example.com.")],
    prefix: Annotated[str, typer.Option(help="Path before the token.")] = "/c/",
    scheme: Annotated[str | None, typer.Option(help="https (default) or http.")] = None,
    fallback_url: Annotated[
        str | None, typer.Option(help="Where unknown or expired links on this host go.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Register a short domain for a workspace's links."""
    c = _container()
    d = workspaces.add_domain(
        c.workspaces, _workspace(c, workspace), host, now_us(),
        path_prefix=prefix, scheme=scheme, fallback_url=fallback_url,
    )  # fmt: skip
    out.print(f"added domain {d.host}: links look like {d.base_url}XXXXXXXXX")


@domain_app.command("list")
def domain_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's domains."""
    c = _container()
    items = c.workspaces.list_domains(_workspace(c, workspace).id)
    if as_json:
        _print_json(
            [
                {"host": d.host, "base_url": d.base_url, "fallback_url": d.fallback_url}
                for d in items
            ]
        )
        return
    table = Table("host", "links look like", "fallback")
    for d in items:
        table.add_row(d.host, d.base_url + "XXXXXXXXX", d.fallback_url or "")
    out.print(table)


# -- contacts -----------------------------------------------------------------------------------


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV with a 'phone' column.", show_default=False)],
    region: Annotated[
        str | None,
        typer.Option(help="Country (ISO code) of numbers written without +country code."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows; write bad ones aside.")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where --skip-invalid writes rejected rows (default FILE.rejected.csv)."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the file.")] = "utf-8-sig",
    list_name: Annotated[
        str | None, typer.Option("--list", help="Also add the contacts to this list.")
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty", help="Accept a file with a header and no data rows (imports nothing)."
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Import recipients from CSV. All-or-nothing unless --skip-invalid; a file with a header
    and no data rows is an error unless --allow-empty."""
    c = _container()
    ws = _workspace(c, workspace)
    if not file.is_file():
        raise InvalidInput(f"{file}: no such file", field="file")
    size = file.stat().st_size
    region = region or c.settings.default_region or None
    with Progress(
        TextColumn("reading {task.description}"), BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=err, transient=True, disable=size < 2_000_000,
    ) as bar, file.open("rb") as fh:  # fmt: skip
        task = bar.add_task(file.name, total=size)
        parsed = contacts.parse_contacts_csv(
            fh, name=str(file), region=region, encoding=encoding, spelling=IMPORT_SPELLING,
            progress=lambda n: bar.update(task, completed=n),
        )  # fmt: skip
    result = contacts.import_contacts(
        c.contacts, ws, parsed, name=str(file), skip_invalid=skip_invalid, list_name=list_name,
        now_us=now_us(), spelling=IMPORT_SPELLING, allow_empty=allow_empty,
    )  # fmt: skip
    out.print(
        f"imported {result.created + result.updated} contacts from {result.rows} rows: "
        f"{result.created} new, {result.updated} updated, {result.duplicates} duplicate rows "
        f"merged, {len(result.rejected)} rejected"
    )
    if not result.rows:
        err.print(f"warning: {file} has a header and no data rows: nothing imported", markup=False)
    if result.rejected:
        path = rejects or file.with_name(file.name + ".rejected.csv")
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "error", *parsed.columns])
            for r in result.rejected:
                w.writerow([r.line, r.reason, *r.row.values()])
        err.print(f"rejected rows written to {path}")


@contacts_app.command("list")
def contacts_list(
    list_name: Annotated[
        str | None, typer.Option("--list", help="Only the contacts of this list.")
    ] = None,
    limit: Annotated[
        int, typer.Option(help=f"Contacts per page (1-{listing.MAX_LIMIT}).")
    ] = listing.DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, typer.Option(help="Resume after the page that printed this cursor.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a workspace's contacts by phone, one page at a time (as GET /v1/contacts; --json
    prints the same body). The next page's cursor is printed after the table."""
    c = _container()
    page = listing.list_contacts(
        c.contacts, c.listing_queries, _workspace(c, workspace), listing.page_limit(str(limit)),
        cursor, list_name=list_name,
    )  # fmt: skip
    if as_json:
        _print_json({
            "items": [
                {
                    "phone": x.phone, "external_id": x.external_id, "first_name": x.first_name,
                    "attributes": x.attributes, "opted_out": x.opted_out,
                    "created_at": iso_utc(x.created_us), "updated_at": iso_utc(x.updated_us),
                }
                for x in page.items
            ],
            "next_cursor": page.next_cursor,
        })  # fmt: skip
        return
    t = Table("phone", "external id", "first name", "attributes", "opted out")
    for x in page.items:
        attrs = ", ".join(f"{k}={v}" for k, v in x.attributes.items())
        t.add_row(
            x.phone, x.external_id or "", x.first_name or "", attrs, "yes" if x.opted_out else ""
        )
    out.print(t, markup=False)
    if page.next_cursor:
        err.print(f"next page: --cursor {page.next_cursor}", markup=False)


@contacts_app.command("count")
def contacts_count(workspace: WorkspaceOpt = None) -> None:
    """Print how many contacts a workspace has."""
    c = _container()
    out.print(str(c.contacts.count_contacts(_workspace(c, workspace).id)))


# -- campaigns ----------------------------------------------------------------------------------


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


@campaign_app.command("create")
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
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a campaign from a message template."""
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
    c = _container()
    cp = campaigns.create_campaign(
        c, _workspace(c, workspace), name=name, template=template, slug=slug,
        domain_host=domain, list_name=list_name, link_roles=_parse_roles(link_role),
        link_utm=_parse_link_utm(link_utm),
        options=CampaignOptions(
            smart_encoding, shift_table, not no_utm, _parse_pairs(utm, "--utm"), click_id_param,
            _parse_pairs(sub, "--sub"),
        ),
        now_us=now_us(),
    )  # fmt: skip
    out.print(f"created campaign [bold]{cp.slug}[/] ({cp.public_id}) with {len(cp.links)} link(s)")
    for lk in cp.links:
        out.print(f"  link {lk.index + 1} [{lk.role}]: {lk.url}", markup=False)


@campaign_app.command("list")
def campaign_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List campaigns, newest first."""
    c = _container()
    items = c.campaigns.list_campaigns(_workspace(c, workspace).id)
    if as_json:
        _print_json(
            [{"id": x.public_id, "slug": x.slug, "name": x.name, "status": x.status} for x in items]
        )
        return
    table = Table("slug", "name", "status", "links", "id")
    for x in items:
        table.add_row(x.slug, x.name, x.status, str(len(x.links)), x.public_id)
    out.print(table)


@campaign_app.command("preview")
def campaign_preview(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    contact: Annotated[str | None, typer.Option(help="Phone or external id of a contact.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the wrapped message for one recipient and what tracking costs."""
    c = _container()
    ws = _workspace(c, workspace)
    p = campaigns.preview_campaign(
        c, ws, campaigns.get_campaign(c.campaigns, ws, campaign), contact
    )
    if as_json:
        _print_json(dataclasses.asdict(p))
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


# -- messages and reports -----------------------------------------------------------------------


@messages_app.command("status")
def messages_status(
    file: Annotated[
        Path, typer.Argument(help="Receipts: JSON lines or CSV (message_id,status,at).")
    ],
    skip_unknown: Annotated[
        bool, typer.Option("--skip-unknown", help="Apply known ids; list unknown ones.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record delivery receipts from a file. All-or-nothing unless --skip-unknown."""
    c = _container()
    ws = _workspace(c, workspace)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{file}: {exc.strerror}", field="file") from None
    now = now_us()
    parsed, where = receipts.parse_receipts_file(data, str(file), now)
    outcome = receipts.record_receipts(
        c.messages, ws, parsed, where=where, skip_unknown=skip_unknown, source="file", now_us=now,
        skip_option="--skip-unknown",
    )  # fmt: skip
    out.print(
        f"{len(parsed)} receipts: {outcome.applied} applied, {outcome.unchanged} unchanged "
        f"(late or repeated), {len(outcome.unknown)} unknown"
    )
    for mid in outcome.unknown[:20]:
        err.print(f"[yellow]unknown message id:[/] {mid}")


@bots_cli.app.command("reclassify")
def bots_reclassify(
    campaign: Annotated[
        str | None, typer.Option(help="Only this campaign (slug or id; needs --workspace).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only requests from this time on (ISO 8601).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run every bot rule over stored requests and rebuild their verdicts."""
    c = _container()
    campaign_id = None
    if campaign is not None:
        campaign_id = campaigns.get_campaign(c.campaigns, _workspace(c, workspace), campaign).id
    since_us = receipts.parse_time(since, "since", 0) if since else None
    with Progress(TextColumn("reclassified"), TextColumn("{task.completed}"), console=err,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("requests", total=None)
        result = bots.reclassify(
            c.clicks, c.classifier, now_us(), campaign_id=campaign_id, since_us=since_us,
            settle_us=c.settings.bot_settle_seconds * 1_000_000,
            progress=lambda n: bar.advance(task, n),
        )  # fmt: skip
    if result.requests:  # credits follow verdicts: the jobs process re-attributes the history
        ws_ids = None if campaign is None else [_workspace(c, workspace).id]
        attribution.request_reattribution(c.attribution, ws_ids, now_us())
    if as_json:
        _print_json(result.__dict__)
        return
    out.print(
        f"{result.requests} requests re-classified, {result.verdict_changes} changed verdict, "
        f"{result.finalized} final"
    )


@bots_cli.app.command("process")
def bots_process(as_json: JsonOpt = False) -> None:
    """Classify the requests waiting in the click inbox now and move them to the clicks table
    (the server's jobs process does this every second; use it after a server was stopped in
    the middle of a backlog, or in scripts that need every click in the reports at once)."""
    c = _container()
    waiting = c.clicks.inbox_size()
    started = time.perf_counter()
    _, final_pass = c.background_jobs()
    done = final_pass()
    seconds = time.perf_counter() - started
    if as_json:
        _print_json({"waiting": waiting, "processed": done, "seconds": round(seconds, 3)})
        return
    out.print(f"{done} requests classified and moved to clicks in {seconds:.1f} s")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _finality(p: Provisional, campaign: str) -> str:
    if p.final:
        return "numbers: final (every bot verdict has settled)"
    return (
        f"numbers: provisional: {p.counted_clicks} counted clicks ({p.requests} requests) may "
        f"still be filtered as bots; final from {p.settles_at} ({p.settle_seconds} s settle "
        f"window; `clicktrail bots finalize {campaign}` settles them now)"
    )


@app.command(
    help="Print a campaign's full report: delivery, clicks (bots filtered, raw beside), "
    "timing, links, devices, countries, bots and the first recipients who clicked "
    f"(docs/reports.md). {COUNTED_CLICKS} The report says whether these numbers are final.\n\n"
    "--json prints what GET /v1/campaigns/CAMPAIGN/report/full returns."
)
def report(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    c = _container()
    full = reports.full_report(
        c.report_queries, _workspace(c, workspace), campaign, now_us=now_us()
    )
    if as_json:
        _print_json(full.as_dict())
        return
    r, tm = full.summary, full.timing
    a, o, p = r.all_links, r.optout, r.provisional
    t = Table(title=f"{r.name} ({r.campaign})", show_header=False)
    median_s = "—" if tm.median_first_click_s is None else f"{tm.median_first_click_s:.0f} s"
    for label, value in [
        ("messages", r.messages), ("sent", r.sent), ("delivered", r.delivered),
        ("failed", r.failed), ("undelivered", r.undelivered), ("queued", r.queued),
        ("clicks (bots filtered, opt-out links apart)", r.total_clicks),
        ("unique clickers", r.unique_clicks),
        ("CTR (unique / delivered)", _pct(r.ctr)),
        ("repeat click rate (total / unique)", "—" if r.repeat_click_rate is None else f"{r.repeat_click_rate:.2f}"),
        ("raw clicks / unique / CTR", f"{r.raw_total_clicks} / {r.raw_unique_clicks} / {_pct(r.raw_ctr)}"),
        ("median time to first click", median_s),
        ("opt-out clicks / unique / rate", f"{o.total_clicks} / {o.unique_clicks} / {_pct(o.rate)}"),
        ("all links: clicks / unique / CTR", f"{a.total_clicks} / {a.unique_clicks} / {_pct(a.ctr)}"),
        ("preview fetches", r.preview_fetches),
        ("requests incl. HEAD probes", r.requests),
        ("not counted as clicks (of requests)", f"{full.bots.not_counted} ({_pct(full.bots.share)})"),
    ]:  # fmt: skip
        t.add_row(label, str(value))
    out.print(t)
    out.print(_finality(p, campaign), markup=False)
    if r.by_verdict:
        out.print("requests by verdict: " + ", ".join(f"{k} {v}" for k, v in r.by_verdict.items()))
    if r.by_reason:
        out.print("top reasons: " + ", ".join(f"{k} {v}" for k, v in list(r.by_reason.items())[:8]))
    lt = Table("link", "role", "url", "clicks", "unique", "CTR", "raw clicks")
    for lk in r.links:
        lt.add_row(
            str(lk.link), lk.role, lk.url, str(lk.total_clicks), str(lk.unique_clicks),
            _pct(lk.ctr), str(lk.raw_total_clicks),
        )  # fmt: skip
    out.print(lt)
    busy = [b for b in tm.buckets if b.clicks]
    if busy:
        out.print(
            "clicks after delivery: "
            + ", ".join(
                f"{b.start_s // 60} min {b.clicks}" if b.start_s < 3600 else f"{b.start_s // 3600} h {b.clicks}"
                for b in busy[:12]
            )
            + (" …" if len(busy) > 12 else "")
        )  # fmt: skip
    for title, rows in [("device", full.devices), ("OS", full.oses), ("browser", full.browsers)]:
        if rows:
            out.print(
                f"by {title}: "
                + ", ".join(f"{x.name} {x.count} ({_pct(x.share)})" for x in rows[:6])
            )
    if full.countries:
        ct = Table("country", "recipients", "delivered", "unique", "CTR")
        for cs in full.countries:
            ct.add_row(
                cs.country,
                str(cs.recipients),
                str(cs.delivered),
                str(cs.unique_clicks),
                _pct(cs.ctr),
            )
        out.print(ct)
    if full.recipients.items:
        rt = Table(
            "phone",
            "external id",
            "clicks",
            "first click",
            "last click",
            "device",
            title=f"recipients who clicked ({full.recipients.total}; first {len(full.recipients.items)})",
        )
        for x in full.recipients.items:
            rt.add_row(
                x.phone,
                x.external_id or "",
                str(x.clicks),
                iso_us(x.first_click_us) or "",
                iso_us(x.last_click_us) or "",
                " / ".join(v for v in (x.device, x.os, x.browser) if v),
            )
        out.print(rt)


@app.command()
def compare(
    since: Annotated[
        str | None, typer.Option(help="Campaigns sent at or after (ISO 8601).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Campaigns sent before (ISO 8601).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare campaigns sent in a date range: CTR and median time to first click
    (the report comparison view; --json prints what GET /v1/reports/compare returns)."""
    c = _container()
    since_us = receipts.parse_time(since, "since", 0) if since else None
    until_us = receipts.parse_time(until, "until", 0) if until else None
    rows = reports.compare_campaigns(
        c.report_queries, _workspace(c, workspace), since_us=since_us, until_us=until_us
    )
    if as_json:
        _print_json({"items": [x.as_dict() for x in rows]})
        return
    t = Table("campaign", "sent", "delivered", "clicks", "unique", "CTR", "median to first click")
    for x in rows:
        median_s = "—" if x.median_first_click_s is None else f"{x.median_first_click_s:.0f} s"
        t.add_row(
            x.slug,
            iso_us(x.sent_us) or "—",
            str(x.delivered),
            str(x.total_clicks),
            str(x.unique_clicks),
            _pct(x.ctr),
            median_s,
        )
    out.print(t)


def main() -> None:
    """Entry point of the `clicktrail` command."""
    app()
