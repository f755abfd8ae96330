"""`clicktrail touchpoints import`: other channels' touches from a CSV or JSON-lines file, all or
nothing (docs/touchpoints.md).

Mounted by the root command as ``app.add_typer(touchpoints.app, name="touchpoints")``; errors
from services reach the root command, which maps them to messages and exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clicktrail.bootstrap import Container
from clicktrail.cli.options import WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import touchpoints, workspaces
from clicktrail.services.clock import now_us

app = typer.Typer(
    help="Touchpoints of other channels (email, paid social, web) for multi-touch attribution.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
MAX_ERRORS_SHOWN = 50


@app.command("import")
def import_touchpoints(
    file: Annotated[Path, typer.Argument(help="The file ('-': standard input).")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="csv or jsonl (default: from the file's suffix)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Country of phones without +country code (e.g. US).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Import touchpoints: CSV with a header (channel, external_id or phone, occurred_at,
    campaign, source, touch_id) or one JSON object per line as the API takes them. Every line
    is checked first: any bad line, and nothing is stored (each is listed)."""
    fmt = format or ("jsonl" if file.suffix.lower() in (".jsonl", ".ndjson") else "csv")
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"file: cannot read {file}: {exc.strerror}", field="file") from None
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        result = touchpoints.import_lines(
            c.touchpoints, ws, data, fmt, now_us=now_us(),
            region=region or c.settings.default_region or None,
        )  # fmt: skip
    finally:
        c.dispose()
    if not result.stored:
        failures = list(result.failures())
        for _where, o in failures[:MAX_ERRORS_SHOWN]:
            err.print(f"{o.detail}", markup=False)
        if len(failures) > MAX_ERRORS_SHOWN:
            err.print(f"… and {len(failures) - MAX_ERRORS_SHOWN} more")
        err.print(f"{len(failures)} bad lines: nothing imported")
        raise typer.Exit(1)
    accepted = sum(1 for o in result.outcomes if o.outcome == "accepted")
    out.print(f"{accepted} touchpoints imported, {len(result.outcomes) - accepted} duplicates")
