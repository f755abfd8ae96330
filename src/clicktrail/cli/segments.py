"""`clicktrail segments`: saved filters and static lists of contacts, with their sizes; a
static segment's members; a segment's export (docs/segments.md).

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, nothing written; unknown segment: 3; a built-in or used segment deleted: 4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clicktrail.cli.export import FormatOpt, OutputOpt, PhoneOpt, SaltOpt, write_export
from clicktrail.cli.options import JsonOpt, WorkspaceOpt, container, out, print_json, workspace_of
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import segments
from clicktrail.services.clock import now_us
from clicktrail.services.segments import SizedSegment
from clicktrail.web.api_segments import segment_out

app = typer.Typer(
    help="Segments: saved filters (engagement band, clicks, conversions, country, attributes) "
    "and static lists, with their sizes (docs/segments.md).",
    no_args_is_help=True,
)
SegmentArg = Annotated[str, typer.Argument(help="Segment slug or id.")]
ContactsArg = Annotated[list[str], typer.Argument(help="Phones (E.164) or external ids.")]


def _table(items: list[SizedSegment]) -> None:
    table = Table("segment", "name", "kind", "size", "filter")
    for x in items:
        seg = x.segment
        kind = ("built-in " if seg.builtin else "") + seg.kind
        f = "" if seg.filter is None else json.dumps(seg.filter.as_dict(), ensure_ascii=False)
        table.add_row(seg.slug, seg.name, kind, str(x.size), f)
    out.print(table)


@app.command("list")
def segments_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List segments (the built-in ones first) with their sizes now."""
    c = container()
    try:
        items = segments.sizes(c, workspace_of(c, workspace), now_us())
    finally:
        c.dispose()
    if as_json:
        print_json([segment_out(x).model_dump(mode="json") for x in items])
        return
    _table(items)


@app.command("create")
def segments_create(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='Conditions as JSON, e.g. \'{"band": "engaged", "country": ["US"]}\' '
            "(docs/segments.md).",
        ),
    ] = None,
    filter_file: Annotated[
        Path | None, typer.Option(help="Read the conditions from a JSON file.")
    ] = None,
    static: Annotated[
        bool, typer.Option("--static", help="An empty static list instead of a filter.")
    ] = False,
    slug: Annotated[str | None, typer.Option(help="Short name (default: from the name).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a saved filter, or a static list (--static)."""
    if filter is not None and filter_file is not None:
        raise InvalidInput("give --filter or --filter-file, not both", field="--filter")
    text, where = filter, "--filter"
    if filter_file is not None:
        where = str(filter_file)
        try:
            text = filter_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"{filter_file}: cannot read: {exc}", field="--filter-file"
            ) from None
    conditions = None
    if text is not None:
        try:
            conditions = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: not JSON: {exc}", field=where) from None
    c = container()
    try:
        ws = workspace_of(c, workspace)
        now = now_us()
        seg = segments.create_segment(
            c, ws, name=name, kind="static" if static else "filter", filter=conditions,
            slug=slug, now_us=now,
        )  # fmt: skip
        sized = segments.size_of(c, ws, seg.slug, now)
    finally:
        c.dispose()
    if as_json:
        print_json(segment_out(sized).model_dump(mode="json"))
        return
    out.print(f"created segment {seg.slug} ({seg.public_id}): {sized.size} contacts", markup=False)


@app.command("show")
def segments_show(
    segment: SegmentArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Show a segment with its size now."""
    c = container()
    try:
        got = segments.size_of(c, workspace_of(c, workspace), segment, now_us())
    finally:
        c.dispose()
    if as_json:
        print_json(segment_out(got).model_dump(mode="json"))
        return
    _table([got])


@app.command("delete")
def segments_delete(segment: SegmentArg, workspace: WorkspaceOpt = None) -> None:
    """Delete one of your segments (its static members with it)."""
    c = container()
    try:
        segments.delete_segment(c, workspace_of(c, workspace), segment, now_us())
    finally:
        c.dispose()
    out.print(f"deleted segment {segment}", markup=False)


def _change(segment: str, add: list[str], remove: list[str], workspace: str | None) -> None:
    c = container()
    try:
        ws = workspace_of(c, workspace)
        now = now_us()
        done = segments.change_members(
            c, ws, segment, add=add, remove=remove, now_us=now,
            where_add=[f"contact {i + 1} ({r})" for i, r in enumerate(add)],
            where_remove=[f"contact {i + 1} ({r})" for i, r in enumerate(remove)],
        )  # fmt: skip
        size = segments.size_of(c, ws, segment, now).size
    finally:
        c.dispose()
    out.print(f"{done.added} added, {done.removed} removed; {segment} has {size} contacts")


@app.command("add")
def segments_add(
    segment: SegmentArg, contacts: ContactsArg, workspace: WorkspaceOpt = None
) -> None:
    """Add contacts to a static segment (all or nothing)."""
    _change(segment, contacts, [], workspace)


@app.command("remove")
def segments_remove(
    segment: SegmentArg, contacts: ContactsArg, workspace: WorkspaceOpt = None
) -> None:
    """Remove contacts from a static segment (all or nothing)."""
    _change(segment, [], contacts, workspace)


@app.command("export")
def segments_export(
    segment: SegmentArg,
    format: FormatOpt = "csv",
    output: OutputOpt = None,
    phone: PhoneOpt = "plain",
    salt: SaltOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export a segment's members now (csv or jsonl; columns: docs/segments.md)."""
    c = container()
    try:
        plan = segments.plan_export(
            c, workspace_of(c, workspace), segment, format=format, phone=phone, salt=salt,
            now_us=now_us(),
        )  # fmt: skip
        write_export(plan, output)
    finally:
        c.dispose()
