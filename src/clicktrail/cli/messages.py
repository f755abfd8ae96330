"""`clicktrail messages status`: delivery receipts from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clicktrail.cli.options import (
    WorkspaceOpt,
    container,
    err,
    out,
    workspace_of,
)
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import (
    receipts,
)
from clicktrail.services.clock import now_us

app = typer.Typer(help="Messages and delivery receipts.", no_args_is_help=True)


@app.command("status")
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
    c = container()
    ws = workspace_of(c, workspace)
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
