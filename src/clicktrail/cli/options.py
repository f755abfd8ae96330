"""Command-line options shared by the command groups."""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="CLICKTRAIL_WORKSPACE",
        help="Workspace slug or id (not needed when there is only one).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
