"""`clicktrail opt-outs`: opt contacts out or back in, import a suppression list, show a
contact's history, set the replies to HELP, STOP and START (docs/providers.md, "Opt-outs").

Mounted by the root command as ``app.add_typer(optouts.app, name="opt-outs")``; errors from
services reach the root command, which maps them to messages and exit codes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Workspace
from clicktrail.domain.report import iso_us
from clicktrail.services import optouts, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.optouts import KeywordReplies, ManualChange, OptResult

app = typer.Typer(
    help="Opt-outs: manual changes, suppression lists, history, keyword replies.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)

ContactsArg = Annotated[
    list[str], typer.Argument(help="Phones (E.164, or national with --region) or external ids.")
]
RegionOpt = Annotated[
    str | None, typer.Option(help="Country of numbers without +country code (e.g. US).")
]
NoteOpt = Annotated[str | None, typer.Option(help="Why (kept in the history).")]


def _session(workspace: str | None) -> tuple[Container, Workspace]:
    c = Container(load_settings())
    return c, workspaces.resolve_workspace(c.workspaces, workspace)


def _print_results(results: list[OptResult]) -> None:
    for r in results:
        state = "opted out" if r.opted_out else "opted in"
        how = "changed" if r.applied else "unchanged"
        new = ", new contact" if r.created else ""
        out.print(f"{r.phone}: {state} ({how}{new})")


def _change(
    contacts: list[str], opted_out: bool, workspace: str | None, region: str | None,
    note: str | None,
) -> None:  # fmt: skip
    c, ws = _session(workspace)
    try:
        results = optouts.set_opt_outs(
            c.contacts, c.optout_queries, ws,
            [ManualChange(x, opted_out, None, note) for x in contacts],
            where=[f"argument {i + 1}" for i in range(len(contacts))], source="cli",
            now_us=now_us(), region=region or c.settings.default_region or None,
        )  # fmt: skip
    finally:
        c.dispose()
    _print_results(results)


@app.command("add")
def opt_out_add(
    contacts: ContactsArg,
    note: NoteOpt = None,
    region: RegionOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Opt contacts out (an unknown phone becomes an opted-out contact)."""
    _change(contacts, True, workspace, region, note)


@app.command("remove")
def opt_out_remove(
    contacts: ContactsArg,
    note: NoteOpt = None,
    region: RegionOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Opt contacts back in (only with their consent: a STOP must be honoured)."""
    _change(contacts, False, workspace, region, note)


@app.command("import")
def opt_out_import(
    file: Annotated[
        Path, typer.Argument(help="Phones to opt out: one per line, or CSV with a phone column.")
    ],
    region: RegionOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Opt out every phone of a suppression list (all or nothing; history source 'import')."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{file}: {exc.strerror}", field="file") from None
    c, ws = _session(workspace)
    try:
        phones, _where = optouts.parse_opt_out_list(
            data, str(file), region or c.settings.default_region or None
        )
        results = optouts.import_opt_outs(
            c.optout_queries, ws, phones, source="import", now_us=now_us()
        )
    finally:
        c.dispose()
    changed = sum(r.applied for r in results)
    created = sum(r.created for r in results)
    out.print(
        f"{len(results)} phone(s): {changed} opted out now, {len(results) - changed} already "
        f"were, {created} new contact(s)"
    )


@app.command("history")
def opt_out_history(
    contact: Annotated[str, typer.Argument(help="Phone (E.164) or external id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a contact's opt-out state and every opt-out and opt-in, newest first."""
    c, ws = _session(workspace)
    try:
        history = optouts.contact_history(c.contacts, c.optout_queries, ws, contact)
    finally:
        c.dispose()
    rows: list[dict[str, Any]] = [
        {
            "opted_out": e.opted_out,
            "at": iso_us(e.at_us),
            "source": e.source,
            "keyword": e.keyword,
            "to_number": e.to_number,
            "note": e.note,
            "applied": e.applied,
            "recorded_at": iso_us(e.recorded_us),
        }
        for e in history.events
    ]
    if as_json:
        sys.stdout.write(
            json.dumps(
                {"opted_out": history.opted_out, "events": rows}, indent=2, ensure_ascii=False
            )
            + "\n"
        )
        return
    out.print(f"{history.phone}: {'opted out' if history.opted_out else 'opted in'}")
    t = Table("at", "change", "source", "applied", "note")
    for r in rows:
        t.add_row(
            r["at"], "opt-out" if r["opted_out"] else "opt-in", r["source"],
            "yes" if r["applied"] else "no (already so, or older)", r["note"] or "",
        )  # fmt: skip
    out.print(t)


@app.command("replies")
def opt_out_replies(
    help_reply: Annotated[
        str | None, typer.Option("--help-reply", help="Reply to HELP ('' for none).")
    ] = None,
    opt_out_reply: Annotated[
        str | None, typer.Option("--opt-out-reply", help="Reply to STOP and the like.")
    ] = None,
    opt_in_reply: Annotated[
        str | None, typer.Option("--opt-in-reply", help="Reply to START and UNSTOP.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the keyword replies, or set those given (the others are kept)."""
    c, ws = _session(workspace)
    try:
        current = optouts.get_replies(c.optout_queries, ws)
        if any(x is not None for x in (help_reply, opt_out_reply, opt_in_reply)):
            current = optouts.set_replies(
                c.optout_queries,
                ws,
                KeywordReplies(
                    current.help if help_reply is None else help_reply,
                    current.opt_out if opt_out_reply is None else opt_out_reply,
                    current.opt_in if opt_in_reply is None else opt_in_reply,
                ),
                now_us(),
            )
    finally:
        c.dispose()
    data = {"help": current.help, "opt_out": current.opt_out, "opt_in": current.opt_in}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    for name, value in data.items():
        out.print(f"{name}: {value if value is not None else '(no reply)'}", markup=False)
