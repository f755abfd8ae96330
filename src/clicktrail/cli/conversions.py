"""`clicktrail conversions`, `clicktrail postback-secret`, `clicktrail publishable-key`:
conversions for the operator (docs/conversions.md).

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, not found: 3, conflict: 4). `conversions import` checks every line first, click ids
and contacts included, and writes nothing when one is wrong: each bad line is named with its
field. A secret is printed once, on stdout, alone on its line.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain import conversions as rules
from clicktrail.domain.errors import InvalidInput, Problem
from clicktrail.domain.report import iso_us
from clicktrail.services import campaigns, conversion_keys, conversions, imports, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.conversion_keys import ConversionKey, KeyKind
from clicktrail.services.conversions import Conversion, ConversionFilter

app = typer.Typer(
    help="Conversions: list, import (CSV or JSON lines), the rejected log, events' duplicate "
    "modes (docs/conversions.md).",
    no_args_is_help=True,
)
secrets_app = typer.Typer(
    help="Postback secrets for affiliate networks: create (shown once), list, revoke.",
    no_args_is_help=True,
)
publishable_app = typer.Typer(
    help="Publishable (browser-safe) keys for the snippet and the pixel: create, list, revoke.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
CSV_COLUMNS = ("click_id", "ct_cid", "contact_external_id", "contact_phone", "event", "value",
               "currency", "occurred_at", "txn")  # fmt: skip
CONTACT_COLUMNS = ("contact_external_id", "contact_phone")
MAX_SHOWN = 20  # bad lines printed (all of them with --json)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _conversion(c: Conversion) -> dict[str, Any]:
    return {"id": c.public_id, "event": c.event, "value": c.value, "currency": c.currency,
            "occurred_at": iso_us(c.occurred_us), "received_at": iso_us(c.received_us),
            "click_id": c.click_id, "contact": c.contact_external_id or c.contact_phone,
            "campaign": c.campaign, "message": c.message, "link": c.link, "txn": c.txn,
            "source": c.source, "metadata": c.metadata}  # fmt: skip


@app.command("list")
def conversions_list(
    event: Annotated[str | None, typer.Option(help="Only this event.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign (slug or id).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only from api, postback, pixel, beacon or import.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List conversions in the order they were stored (the first LIMIT)."""
    if source is not None and source not in rules.SOURCES:
        raise InvalidInput(f"--source must be one of {', '.join(rules.SOURCES)}", field="source")
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        where = ConversionFilter(
            event=None if event is None else rules.event_name(event, "--event"),
            campaign_id=None if campaign is None
            else campaigns.get_campaign(c.campaigns, ws, campaign).id,
            source=source,
        )  # fmt: skip
        page = conversions.list_conversions(c.conversions, ws, where, limit)
    finally:
        c.dispose()
    if as_json:
        _print_json([_conversion(x) for x in page.items])
        return
    table = Table(
        "id", "occurred", "event", "value", "click / contact", "campaign", "txn", "source"
    )
    for x in page.items:
        value = f"{x.value} {x.currency}" if x.value is not None else ""
        who = x.click_id or x.contact_external_id or x.contact_phone or ""
        table.add_row(x.public_id, iso_us(x.occurred_us), x.event, value, who, x.campaign or "",
                      x.txn or "", x.source)  # fmt: skip
    out.print(table)
    if page.next_cursor:
        err.print(f"(the first {limit}; more with --limit or the API's cursor)")


def _problem(field: str, detail: str, outcome: str) -> Problem:
    text = detail if detail.startswith(field) else f"{field}: {detail}"
    return Problem(field, f"{text} ({outcome})")


@app.command("import")
def conversions_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV (columns: see docs) or JSON lines.", exists=True, dir_okay=False),
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: by the extension).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import conversions (source `import`): every line checked first, nothing written when
    one is wrong; then what each line did (accepted, replaced, duplicate)."""
    kind = fmt or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
    if kind not in ("csv", "jsonl"):
        raise InvalidInput("--format must be csv or jsonl", field="format")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"file: cannot read {file}: {exc.strerror}", field="file") from None
    read = imports.read_lines(data, kind, CSV_COLUMNS, CONTACT_COLUMNS, name=str(file))
    bad = {i: Problem(read.where[i].rstrip(": "), read.where[i] + reason)
           for i, reason in read.unreadable.items()}  # fmt: skip
    readable = [i for i in range(len(read.items)) if i not in bad]
    batches = [readable[i : i + conversions.MAX_BATCH]
               for i in range(0, len(readable), conversions.MAX_BATCH)]  # fmt: skip
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        region = c.settings.default_region or None
        now = now_us()
        for batch in batches:
            checked = conversions.record_conversions(
                c.conversions, ws, [read.items[i] for i in batch], source="import", now_us=now,
                where=[read.where[i] for i in batch], region=region, dry_run=True,
            )  # fmt: skip
            for i, o in zip(batch, checked, strict=True):
                if o.outcome != "accepted":
                    bad[i] = _problem(o.field or "", o.detail or "", o.outcome)
        problems = [bad[i] for i in sorted(bad)]
        if problems:
            shown = "\n".join(f"  {p.message}" for p in problems[:MAX_SHOWN])
            more = (
                f"\n  (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
            )
            raise InvalidInput(
                f"{file}: {len(problems)} bad line(s); nothing was imported:\n{shown}{more}",
                field=problems[0].field, problems=problems,
            )  # fmt: skip
        counts: Counter[str] = Counter()
        for batch in batches:
            done = conversions.record_conversions(
                c.conversions, ws, [read.items[i] for i in batch], source="import", now_us=now,
                where=[read.where[i] for i in batch], region=region,
            )  # fmt: skip
            counts.update(o.outcome for o in done)
    finally:
        c.dispose()
    if as_json:
        _print_json({"lines": len(read.items), **counts})
        return
    out.print(
        f"{len(read.items)} line(s): " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )


@app.command("rejected")
def conversions_rejected(
    no_workspace: Annotated[
        bool,
        typer.Option(
            "--no-workspace",
            help="Refusals that named no workspace (unknown secret "
            "or key) instead of a workspace's.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The rejected log of postbacks, pixels and beacons, newest first."""
    c = Container(load_settings())
    try:
        ws = None if no_workspace else workspaces.resolve_workspace(c.workspaces, workspace)
        page = conversions.rejected(c.conversions, ws, limit)
    finally:
        c.dispose()
    rows = [{"at": iso_us(r.at_us), "source": r.source, "reason": r.reason, "field": r.field,
             "detail": r.detail, "query": r.query, "ip": r.ip} for r in page.items]  # fmt: skip
    if as_json:
        _print_json(rows)
        return
    table = Table("at", "source", "reason", "field", "detail", "ip", "query")
    for r in rows:
        table.add_row(r["at"], r["source"], r["reason"], r["field"] or "", r["detail"],
                      r["ip"] or "", r["query"])  # fmt: skip
    out.print(table)


@app.command("event-mode")
def conversions_event_mode(
    event: Annotated[str | None, typer.Argument(help="The event (none: list every mode).")] = None,
    mode: Annotated[
        str | None, typer.Argument(help="ignore, count or replace (none: show the event's).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set what a second conversion of an event does: ignore (default), count (again,
    without a txn) or replace (the value)."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        if event is not None and mode is not None:
            name, set_to = conversions.set_event_mode(
                c.conversions, ws, event, mode, now_us=now_us()
            )
            rows = [(name, str(set_to))]
        else:
            modes = {e: m for e, m, _u in conversions.event_modes(c.conversions, ws)}
            if event is None:
                rows = sorted(modes.items())
            else:
                name = rules.event_name(event)
                rows = [(name, modes.get(name, rules.DEFAULT_MODE))]
    finally:
        c.dispose()
    if as_json:
        _print_json([{"event": e, "duplicate_mode": m} for e, m in rows])
        return
    for e, m in rows:
        out.print(f"{e}: {m}")
    if not rows:
        err.print("no event has a mode set: every event is 'ignore'")


def _credential_commands(group: typer.Typer, kind: KeyKind) -> None:
    label = conversion_keys.NAMES[kind]

    def as_dict(k: ConversionKey) -> dict[str, Any]:
        return {"id": k.public_id, "name": k.name, "prefix": k.prefix,
                "default_currency": k.default_currency,
                "state": "revoked" if k.revoked_us else "active",
                "created_at": iso_us(k.created_us), "revoked_at": iso_us(k.revoked_us)}  # fmt: skip

    @group.command("create")
    def create(
        name: Annotated[str, typer.Argument(help="What it is for (the network, the site).")],
        default_currency: Annotated[
            str | None,
            typer.Option(help="ISO 4217 currency of values sent without one (e.g. USD)."),
        ] = None,
        workspace: WorkspaceOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        c = Container(load_settings())
        try:
            ws = workspaces.resolve_workspace(c.workspaces, workspace)
            made = conversion_keys.create_key(
                c.conversion_keys, ws, kind, name, now_us(), default_currency=default_currency
            )
        finally:
            c.dispose()
        if as_json:
            _print_json({**as_dict(made.key), "secret": made.secret})
            return
        sys.stdout.write(made.secret + "\n")
        err.print(f"{made.key.public_id} ({made.key.name}). Store this {label} now: it is not "
                  "shown again.", markup=False)  # fmt: skip

    create.__doc__ = f"Create a {label} (printed once)."

    @group.command("list")
    def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
        c = Container(load_settings())
        try:
            ws = workspaces.resolve_workspace(c.workspaces, workspace)
            found = conversion_keys.list_keys(c.conversion_keys, ws, kind)
        finally:
            c.dispose()
        if as_json:
            _print_json([as_dict(k) for k in found])
            return
        table = Table("id", "name", "prefix", "currency", "state", "created")
        for k in found:
            d = as_dict(k)
            table.add_row(d["id"], d["name"], d["prefix"], d["default_currency"] or "",
                          d["state"], d["created_at"])  # fmt: skip
        out.print(table)

    list_.__doc__ = f"List the workspace's {label}s, revoked ones too (never a secret)."

    @group.command("revoke")
    def revoke(
        key_id: Annotated[str, typer.Argument(help="Its id, as `list` shows it.", metavar="ID")],
        workspace: WorkspaceOpt = None,
    ) -> None:
        c = Container(load_settings())
        try:
            ws = workspaces.resolve_workspace(c.workspaces, workspace)
            done = conversion_keys.revoke_key(c.conversion_keys, ws, kind, key_id, now_us())
        finally:
            c.dispose()
        out.print(f"{done.public_id} ({done.name}) revoked")

    revoke.__doc__ = f"Revoke a {label} at once."


_credential_commands(secrets_app, "postback")
_credential_commands(publishable_app, "publishable")
