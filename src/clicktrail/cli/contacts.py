"""`clicktrail contacts`: import recipients from CSV, list and count them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from clicktrail.cli.options import (
    JsonOpt,
    WorkspaceOpt,
    container,
    err,
    out,
    print_json,
    workspace_of,
)
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import (
    contacts,
    listing,
)
from clicktrail.services.clock import now_us
from clicktrail.services.exports import iso_utc

app = typer.Typer(help="Recipients.", no_args_is_help=True)

# How the contact import's options are written here, for its error messages.
IMPORT_SPELLING = contacts.Spelling(
    skip_invalid="--skip-invalid", encoding="e.g. --encoding latin-1", allow_empty="--allow-empty"
)


@app.command("import")
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
    c = container()
    ws = workspace_of(c, workspace)
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


@app.command("list")
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
    c = container()
    page = listing.list_contacts(
        c.contacts, c.listing_queries, workspace_of(c, workspace), listing.page_limit(str(limit)),
        cursor, list_name=list_name,
    )  # fmt: skip
    if as_json:
        print_json({
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


@app.command("count")
def contacts_count(workspace: WorkspaceOpt = None) -> None:
    """Print how many contacts a workspace has."""
    c = container()
    out.print(str(c.contacts.count_contacts(workspace_of(c, workspace).id)))
