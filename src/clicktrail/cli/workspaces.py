"""`clicktrail workspace` and `clicktrail domain`: workspaces (tenants) and their short domains."""

from __future__ import annotations

from typing import Annotated

import typer
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
from clicktrail.services import (
    workspaces,
)
from clicktrail.services.clock import now_us

workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
domain_app = typer.Typer(help="Short domains for tracked links.", no_args_is_help=True)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Retail'.")],
    slug: Annotated[str | None, typer.Option(help="Short name used on the command line.")] = None,
) -> None:
    """Create a workspace."""
    ws = workspaces.create_workspace(container().workspaces, name, now_us(), slug=slug)
    out.print(f"created workspace [bold]{ws.slug}[/] ({ws.public_id})")


@workspace_app.command("list")
def workspace_list(as_json: JsonOpt = False) -> None:
    """List workspaces."""
    c = container()
    items = c.workspaces.list_workspaces()
    if not items and not as_json:
        err.print(f"no workspace yet in {c.settings.database_label}: create one with "
                  "`clicktrail workspace create NAME`", markup=False)  # fmt: skip
        return
    if as_json:
        print_json(
            [{"id": w.public_id, "slug": w.slug, "name": w.name, "demo": w.is_demo} for w in items]
        )
        return
    table = Table("slug", "name", "id")
    for w in items:
        table.add_row(w.slug, w.name + (" (demo)" if w.is_demo else ""), w.public_id)
    out.print(table)


@domain_app.command("add")
def domain_add(
    host: Annotated[str, typer.Argument(help="Short host, e.g. sms.example.com.")],
    prefix: Annotated[str, typer.Option(help="Path before the token.")] = "/c/",
    scheme: Annotated[str | None, typer.Option(help="https (default) or http.")] = None,
    fallback_url: Annotated[
        str | None, typer.Option(help="Where unknown or expired links on this host go.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Register a short domain for a workspace's links."""
    c = container()
    d = workspaces.add_domain(
        c.workspaces, workspace_of(c, workspace), host, now_us(),
        path_prefix=prefix, scheme=scheme, fallback_url=fallback_url,
    )  # fmt: skip
    out.print(f"added domain {d.host}: links look like {d.base_url}XXXXXXXXX")


@domain_app.command("list")
def domain_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's domains."""
    c = container()
    items = c.workspaces.list_domains(workspace_of(c, workspace).id)
    if as_json:
        print_json(
            [
                {"host": d.host, "base_url": d.base_url, "fallback_url": d.fallback_url}
                for d in items
            ]
        )
        return
    table = Table("host", "links look like", "fallback")
    for d in items:
        table.add_row(d.host, d.base_url + "XXXXXXXXX", d.fallback_url or "")
    out.print(table)
