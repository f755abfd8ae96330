"""`clicktrail provider`: a workspace's SMS provider accounts (Twilio, generic HTTP).

Mounted by the root command as ``app.add_typer(provider.app, name="provider")``; errors from
services reach the root command, which maps them to messages and exit codes. Secrets are never
printed: list and show mask them (an ``${ENV}`` reference is shown, it is not the secret).
`add` is the one place a secret may be an ``${ENV}`` reference (the operator's, on the host; the
API takes values only), to a variable under the ``secret_env_prefix`` setting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.report import iso_us
from clicktrail.services import providers, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.providers import ProviderConfig

app = typer.Typer(
    help="SMS providers: Twilio and HTTP APIs (docs/providers.md).", no_args_is_help=True
)
out = Console(highlight=False, soft_wrap=True)


def _as_dict(p: ProviderConfig) -> dict[str, Any]:
    return {
        "id": p.public_id,
        "name": p.name,
        "kind": p.kind,
        "settings": p.masked(),
        "status_callback": p.settings.get("status_callback"),
        "unknown_receipts": p.unknown_receipts,
        "last_receipt_at": iso_us(p.last_receipt_us),
        "created_at": iso_us(p.created_us),
    }


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _pairs(values: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {v!r}: expected NAME=VALUE", field="param")
        found[key.strip()] = value
    return found


def _config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}", field="config") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})",
                           field="config") from None  # fmt: skip
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a JSON object of options", field="config")
    return data


@app.command("add")
def provider_add(
    name: Annotated[str, typer.Argument(help="Name, e.g. twilio-main (used by --provider).")],
    kind: Annotated[str, typer.Option(help="twilio or http.")],
    account_sid: Annotated[str | None, typer.Option(help="Twilio: account SID (AC…).")] = None,
    auth_token: Annotated[
        str | None,
        typer.Option(
            help="Twilio: auth token; prefer an environment reference: '${CLICKTRAIL_PROVIDER_…}'."
        ),
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--from", help="Twilio: sender number or id.")
    ] = None,
    messaging_service: Annotated[
        str | None, typer.Option(help="Twilio: Messaging Service SID (MG…), instead of --from.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Another origin for the API: a regional endpoint, a Twilio-compatible gateway."
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="HTTP: a shipped preset (vonage, plivo).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="HTTP: NAME=VALUE for the preset or templates; repeatable."),
    ] = None,
    secret_param: Annotated[
        list[str] | None, typer.Option(help="HTTP: a param that is a secret; repeatable.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A JSON object of options (e.g. request/response/receipts for HTTP)."),
    ] = None,
    status_callback: Annotated[
        str | None, typer.Option(help="The exact URL providers post receipts to.")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="This server's public base URL; the receipts URL is derived from it."),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per request (default 10).")] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Messages per second this sender may send (sending jobs' default)."),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Configure an SMS provider for a workspace (give secrets as '${VAR}' references)."""
    options = _config_file(config)
    given: dict[str, Any] = {
        "account_sid": account_sid, "auth_token": auth_token, "from": sender,
        "messaging_service_sid": messaging_service, "base_url": base_url, "preset": preset,
        "status_callback": status_callback, "public_url": public_url, "rate": rate,
    }  # fmt: skip
    options.update({k: v for k, v in given.items() if v is not None})
    if timeout is not None:
        if kind == "http":
            options.setdefault("request", {})
            if isinstance(options["request"], dict):
                options["request"]["timeout"] = timeout
        else:
            options["timeout"] = timeout
    if param:
        options["params"] = {**options.get("params", {}), **_pairs(param)}
    if secret_param:
        options["secret_params"] = [*options.get("secret_params", []), *secret_param]
    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        # The operator's CLI, on the host: the one place secrets may be ${NAME} references.
        p = providers.add_provider(
            c.provider_repo, c.provider_kinds, ws, name=name, kind=kind, options=options,
            now_us=now_us(), env_prefix=c.settings.checked_secret_env_prefix(),
        )  # fmt: skip
    finally:
        c.dispose()
    out.print(f"added {p.kind} provider [bold]{p.name}[/] ({p.public_id})")
    callback = p.settings.get("status_callback")
    if callback:
        out.print(f"receipts are posted to {callback}", markup=False)
    else:
        out.print("no status callback URL: delivery receipts will not reach clicktrail "
                  "(give --public-url or --status-callback)")  # fmt: skip


@app.command("list")
def provider_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's providers (secrets masked)."""
    c = Container(load_settings())
    try:
        items = c.provider_repo.list_providers(
            workspaces.resolve_workspace(c.workspaces, workspace).id
        )
    finally:
        c.dispose()
    if as_json:
        _print_json([_as_dict(p) for p in items])
        return
    table = Table("name", "kind", "sends as", "receipts to", "unknown receipts")
    table.add_row("outbox", "built in", "a JSON-lines file", "", "")
    for p in items:
        s = p.settings
        sends = s.get("from") or s.get("messaging_service_sid") or s.get("preset") or "custom"
        table.add_row(p.name, p.kind, str(sends), s.get("status_callback") or "—",
                      str(p.unknown_receipts))  # fmt: skip
    out.print(table)


@app.command("show")
def provider_show(
    name: Annotated[str, typer.Argument(help="The provider's name.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Print one provider's settings as JSON (secrets masked)."""
    c = Container(load_settings())
    try:
        p = providers.get_provider(
            c.provider_repo, workspaces.resolve_workspace(c.workspaces, workspace), name
        )
    finally:
        c.dispose()
    _print_json(_as_dict(p))


@app.command("remove")
def provider_remove(
    name: Annotated[str, typer.Argument(help="The provider's name.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove a provider (its messages keep its name; its receipts are refused from now on)."""
    c = Container(load_settings())
    try:
        providers.remove_provider(
            c.provider_repo, workspaces.resolve_workspace(c.workspaces, workspace), name
        )
    finally:
        c.dispose()
    out.print(f"removed provider {name}")
