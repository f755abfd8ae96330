"""`clicktrail export`: click events and messages to a file (CSV, JSON lines or Parquet).

Mounted by the root command as ``app.add_typer(export.app, name="export")``; errors from
services reach the root command, which maps them to messages and exit codes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from clicktrail.bootstrap import Container
from clicktrail.cli.options import WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import exports, multitouch, workspaces

app = typer.Typer(
    help="Export click events and messages (columns: docs/exports.md).", no_args_is_help=True
)

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="csv, jsonl or parquet.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="File to write (default: standard output; not parquet)."),
]
CampaignOpt = Annotated[str | None, typer.Option(help="Only this campaign (slug or id).")]
SinceOpt = Annotated[
    str | None, typer.Option(help="From this time on (ISO 8601, UTC when no zone; inclusive).")
]
UntilOpt = Annotated[str | None, typer.Option(help="Before this time (exclusive).")]
PhoneOpt = Annotated[
    str, typer.Option(help="plain, hash (HMAC-SHA256 with --salt) or omit the phone column.")
]
SaltOpt = Annotated[
    str | None,
    typer.Option(
        envvar="CLICKTRAIL_EXPORT_SALT",
        help="Secret salt for --phone hash (at least 16 characters).",
        show_envvar=True,
    ),
]


def write_export(plan: exports.ExportPlan, output: Path | None) -> None:
    if output is None:
        if plan.format == "parquet":
            raise InvalidInput("parquet is binary: give --output FILE", field="output")
        for piece in exports.stream(plan):
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    # Written next to the target and renamed at the end: a failed export leaves no half file.
    tmp = output.with_name(output.name + ".part")
    try:
        with tmp.open("wb") as fh:
            for piece in exports.stream(plan):
                fh.write(piece)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _export_command(what: str, doc: str) -> None:
    """Add the command `what`: the export `services.exports.plan_export` plans by that name."""

    def command(
        format: FormatOpt = "csv",
        output: OutputOpt = None,
        campaign: CampaignOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        phone: PhoneOpt = "plain",
        salt: SaltOpt = None,
        workspace: WorkspaceOpt = None,
    ) -> None:
        c = Container(load_settings())
        try:
            ws = workspaces.resolve_workspace(c.workspaces, workspace)
            plan = exports.plan_export(
                c.campaigns, c.export_queries, ws, what, format=format, campaign=campaign,
                since=since, until=until, phone=phone, salt=salt,
            )  # fmt: skip
            write_export(plan, output)
        finally:
            c.dispose()

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = f"export_{what}"
    app.command(what)(command)


_export_command(
    "clicks", "Export every request on tracked links, with recipient, link, time and bot verdict."
)
_export_command(
    "messages", "Export messages with their delivery status and times (time range: when queued)."
)
_export_command(
    "conversions",
    """Export conversions with the credit each attribution model gave them (time range: when
    they occurred; campaign: where the credit went).""",
)


@app.command("conversion-paths")
def export_conversion_paths(
    format: FormatOpt = "csv",
    output: OutputOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    phone: PhoneOpt = "plain",
    salt: SaltOpt = None,
    half_life: Annotated[
        str | None, typer.Option(help="Time-decay half-life, 1h to 90d (default 7d).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export conversion paths: each conversion's touches in order (SMS deliveries and clicks,
    other channels' touchpoints) with their credit under every multi-touch model (time range:
    when conversions occurred)."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        plan = multitouch.plan_paths_export(
            c.multitouch, ws, format=format, since=since, until=until, phone=phone, salt=salt,
            half_life=half_life,
        )  # fmt: skip
        write_export(plan, output)
    finally:
        c.dispose()
