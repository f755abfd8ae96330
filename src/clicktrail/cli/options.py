"""Command-line options and helpers shared by the command groups."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.models import Workspace
from clicktrail.services import workspaces

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

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def container() -> Container:
    """Return the adapters of this command, from the settings."""
    return Container(load_settings())


def workspace_of(c: Container, ref: str | None) -> Workspace:
    """Return the workspace `ref` names (slug or id; None: the only one)."""
    return workspaces.resolve_workspace(c.workspaces, ref)


def print_json(data: Any) -> None:
    """Print `data` as one indented JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
