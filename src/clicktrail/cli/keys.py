"""`clicktrail keys`: a workspace's API keys, for the operator: create, list, revoke, rotate.

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, not found: 3, conflict: 4); nothing is written then. A key's secret is printed once,
on stdout, alone on its line (``KEY=$(clicktrail keys create)``); everything else goes to
stderr or, with ``--json``, to stdout as one JSON document.
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
from clicktrail.services import keys, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.keys import ApiKey, CreatedKey

app = typer.Typer(
    help="API keys of a workspace: create (shown once), list, revoke, rotate (docs/api.md).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

KeyArg = Annotated[
    str,
    typer.Argument(
        help="The key's id (key_…, from `keys list`), or the key itself (ct_…).",
        metavar="KEY",
        show_default=False,
    ),
]
ExpiresInOpt = Annotated[
    str | None,
    typer.Option("--expires-in", help="Expire after this long: 90d, 12h, 30m, 2w, or seconds."),
]
ExpiresAtOpt = Annotated[
    str | None,
    typer.Option("--expires-at", help="Expire at this time: ISO 8601 (UTC) or Unix seconds."),
]


def _as_dict(key: ApiKey, now: int) -> dict[str, Any]:
    return {"id": key.public_id, "prefix": key.prefix, "name": key.name,
            "state": key.state(now), "scopes": key.scopes,
            "created_at": iso_us(key.created_us), "last_used_at": iso_us(key.last_used_us),
            "expires_at": iso_us(key.expires_us), "revoked_at": iso_us(key.revoked_us)}  # fmt: skip


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _show_secret(created: CreatedKey, now: int, as_json: bool) -> None:
    if as_json:
        _print_json({**_as_dict(created.key, now), "key": created.secret})
        return
    sys.stdout.write(created.secret + "\n")
    expiry = iso_us(created.key.expires_us)
    err.print(
        f"{created.key.public_id} ({created.key.name})"
        + (f", expires {expiry}" if expiry else "")
        + ". Store this key now: it is not shown again. "
        "Use it as 'Authorization: Bearer <key>'.",
        markup=False,
    )


@app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    expires_in: ExpiresInOpt = None,
    expires_at: ExpiresAtOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    now = now_us()
    expires = keys.expiry_us(now, expires_at=expires_at, expires_in=expires_in)
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        created = keys.create_key(c.keys, ws, name, now, expires_us=expires)
    finally:
        c.dispose()
    _show_secret(created, now, as_json)


@app.command("list")
def keys_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's API keys (never their secrets), revoked and expired ones too."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        items = keys.list_keys(c.keys, ws).items
    finally:
        c.dispose()
    now = now_us()
    if as_json:
        _print_json([_as_dict(k, now) for k in items])
        return
    table = Table("id", "prefix", "name", "state", "created", "last used", "expires")
    for k in items:
        table.add_row(
            k.public_id, k.prefix + "…", k.name, k.state(now), iso_us(k.created_us) or "",
            iso_us(k.last_used_us) or "never", iso_us(k.expires_us) or "never",
        )  # fmt: skip
    out.print(table)


@app.command("revoke")
def keys_revoke(key: KeyArg, workspace: WorkspaceOpt = None) -> None:
    """Revoke an API key at once: API calls with it answer 401 and the dashboard sessions it
    opened end. The operator may revoke a workspace's last key."""
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        done = keys.revoke_key(c.keys, ws, key, now_us(), keep_one_active=False)
    finally:
        c.dispose()
    out.print(f"revoked {done.public_id} ({done.name}) at {iso_us(done.revoked_us)}", markup=False)


@app.command("rotate")
def keys_rotate(
    key: KeyArg,
    grace: Annotated[
        str | None,
        typer.Option(
            help="Let the old key work this much longer (e.g. 1h; at most 30d); "
            "default: it is revoked at once."
        ),
    ] = None,
    expires_in: ExpiresInOpt = None,
    expires_at: ExpiresAtOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace an API key by a new one with the same name and scopes; print the new key once.

    The new key expires as asked, else after the old key's lifetime (if it had one).
    """
    now = now_us()
    grace_us = 0 if grace is None else keys.parse_duration(grace, "grace")
    expires = keys.expiry_us(now, expires_at=expires_at, expires_in=expires_in)
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        done = keys.rotate_key(c.keys, ws, key, now, grace_us=grace_us, expires_us=expires)
    finally:
        c.dispose()
    if as_json:
        _print_json({"new": {**_as_dict(done.new.key, now), "key": done.new.secret},
                     "old": _as_dict(done.old, now)})  # fmt: skip
        return
    _show_secret(done.new, now, as_json=False)
    if done.old.revoked_us is not None:
        err.print(f"{done.old.public_id} is revoked.", markup=False)
    else:
        err.print(
            f"{done.old.public_id} keeps working until {iso_us(done.old.expires_us)}.",
            markup=False,
        )
