"""`clicktrail bots networks`: a workspace's own network (CIDR) lists for bot filtering.

Mounted by `clicktrail.cli.bots` as ``bots networks``; errors from services reach the root
command, which maps them to messages and exit codes (bad input: 2, nothing written).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.report import iso_us
from clicktrail.services import networks, workspaces
from clicktrail.services.clock import now_us
from clicktrail.signals import range_file_entries

app = typer.Typer(
    help="A workspace's own network (CIDR) lists: its carriers, its scanners, clouds "
    "(docs/bots.md).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ListOpt = Annotated[
    str, typer.Option("--list", "-l", help="List name, e.g. carriers, aws, own-scanners.")
]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command("add")
def networks_add(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="CIDR ranges or addresses, or range files: AWS ip-ranges.json, Google "
            "cloud.json / goog.json, Azure ServiceTags_*.json, Cloudflare ips-v4 / ips-v6, "
            "plain text (one CIDR a line) or clicktrail's CSV.",
            metavar="FILE_OR_CIDR...",
        ),
    ],
    list_name: ListOpt,
    kind: Annotated[
        str | None,
        typer.Option(
            help="hosting, cdn, crawler, scanner, mobile, relay, residential, vpn or tor "
            "(default: what the file implies; hosting for CIDRs)."
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Owner of every range added.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add ranges to a workspace's network list (created when new); all or nothing."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        done = networks.add_ranges(
            c.network_lists, ws, list_name, sources, read_file=range_file_entries, now_us=now_us(),
            kind=kind, owner=owner,
        )  # fmt: skip
    finally:
        c.dispose()
    if as_json:
        _print_json({"list": done.list_name, "added": done.added, "updated": done.updated,
                     "unchanged": done.unchanged})  # fmt: skip
        return
    out.print(
        f"{done.list_name}: {done.added} ranges added, {done.updated} updated, "
        f"{done.unchanged} already there"
    )
    err.print(
        f"new requests of {ws.slug} are judged with it; re-classify history with "
        f"`clicktrail bots reclassify -w {ws.slug}`",
        markup=False,
    )


@app.command("list")
def networks_list(
    list_name: Annotated[
        str | None, typer.Option("--list", "-l", help="Show this list's ranges.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a workspace's network lists, or the ranges of one (--list)."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        if list_name is None:
            lists = networks.list_networks(c.network_lists, ws).items
        else:
            ranges = networks.list_ranges(c.network_lists, ws, list_name).items
    finally:
        c.dispose()
    if list_name is None:
        if as_json:
            _print_json([{"name": x.name, "ranges": x.ranges, "kinds": list(x.kinds),
                          "created_at": iso_us(x.created_us), "added_at": iso_us(x.added_us)}
                         for x in lists])  # fmt: skip
            return
        table = Table("list", "ranges", "kinds", "last added")
        for x in lists:
            table.add_row(x.name, str(x.ranges), ", ".join(x.kinds), iso_us(x.added_us) or "")
        out.print(table)
        return
    if as_json:
        _print_json([{"cidr": r.cidr, "kind": r.kind, "owner": r.owner,
                      "created_at": iso_us(r.created_us)} for r in ranges])  # fmt: skip
        return
    table = Table("cidr", "kind", "owner", "added")
    for r in ranges:
        table.add_row(r.cidr, r.kind, r.owner, iso_us(r.created_us) or "")
    out.print(table)


@app.command("remove")
def networks_remove(
    list_name: ListOpt,
    cidr: Annotated[
        str | None, typer.Argument(help="Remove only this range (default: the whole list).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove a workspace's network list, or one range of it."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        if cidr is None:
            gone = networks.remove_list(c.network_lists, ws, list_name, now_us=now_us())
            message = f"removed network list {list_name} ({gone} ranges)"
        else:
            normal = networks.remove_range(c.network_lists, ws, list_name, cidr, now_us=now_us())
            message = f"removed {normal} from network list {list_name}"
    finally:
        c.dispose()
    out.print(message)
