"""The `clicktrail` command line: thin commands that parse options, call a service, print.

Errors from services are mapped to messages and exit codes here and only here:
invalid input → 2, not found → 3, conflict → 4, unauthorized → 5.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table
from typer.core import TyperGroup

from clicktrail.cli import attribution as attribution_cli
from clicktrail.cli import automations as automations_cli
from clicktrail.cli import bots as bots_cli
from clicktrail.cli import campaigns as campaigns_cli
from clicktrail.cli import contacts as contacts_cli
from clicktrail.cli import conversions as conversions_cli
from clicktrail.cli import engagement as engagement_cli
from clicktrail.cli import export as export_cli
from clicktrail.cli import holdout as holdout_cli
from clicktrail.cli import keys as keys_cli
from clicktrail.cli import messages as messages_cli
from clicktrail.cli import optouts as optouts_cli
from clicktrail.cli import provider as provider_cli
from clicktrail.cli import reports as reports_cli
from clicktrail.cli import segments as segments_cli
from clicktrail.cli import sending as sending_cli
from clicktrail.cli import sms as sms_cli
from clicktrail.cli import touchpoints as touchpoints_cli
from clicktrail.cli import webhooks as webhooks_cli
from clicktrail.cli import workspaces as workspaces_cli
from clicktrail.cli import wrap as wrap_cli
from clicktrail.cli.options import JsonOpt, container, err, out, print_json
from clicktrail.config import load_settings, setting_help
from clicktrail.domain.errors import ClicktrailError

EXIT_CODES = {
    "invalid_input": 2,
    "unknown_click": 2,
    "unknown_contact": 2,
    "not_found": 3,
    "conflict": 4,
    "unauthorized": 5,
}


class _Root(TyperGroup):
    """The root command: maps clicktrail errors to a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ClicktrailError as exc:
            if exc.code == "not_found" and exc.field == "workspace":
                # Run from another folder, a command may have opened another database: say which.
                exc.message += f" (database: {load_settings().database_label})"
            fail(exc)


app = typer.Typer(
    cls=_Root,
    help="clicktrail: SMS link tracking and click attribution.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
app.add_typer(workspaces_cli.workspace_app, name="workspace")
app.add_typer(workspaces_cli.domain_app, name="domain")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(contacts_cli.app, name="contacts")
app.add_typer(campaigns_cli.app, name="campaign")
sending_cli.register(campaigns_cli.app)  # send, status, pause, resume, cancel…
holdout_cli.register(campaigns_cli.app)  # lift, holdout-size
app.add_typer(messages_cli.app, name="messages")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(sms_cli.app, name="sms")
app.add_typer(bots_cli.app, name="bots")
app.add_typer(export_cli.app, name="export")
app.add_typer(optouts_cli.app, name="opt-outs")
app.command("wrap")(wrap_cli.wrap)
app.add_typer(provider_cli.app, name="provider")
app.add_typer(conversions_cli.app, name="conversions")
app.add_typer(conversions_cli.secrets_app, name="postback-secret")
app.add_typer(conversions_cli.publishable_app, name="publishable-key")
app.add_typer(touchpoints_cli.app, name="touchpoints")
app.add_typer(attribution_cli.app, name="attribution")
app.add_typer(engagement_cli.app, name="engagement")
app.add_typer(webhooks_cli.app, name="webhooks")
app.add_typer(segments_cli.app, name="segments")
app.add_typer(automations_cli.app, name="automations")


def fail(exc: ClicktrailError) -> NoReturn:
    """Print `exc` for a person and exit with its code."""
    err.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
    raise typer.Exit(EXIT_CODES.get(exc.code, 1))


# -- server -------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8787).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port (default 1; setting: workers)."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a demo workspace if the database is empty.")
    ] = False,
) -> None:
    """Serve short-link redirects and the API (HTTPS when tls_certfile and tls_keyfile are set)."""
    from clicktrail.cli.serve import run_server

    settings = load_settings(overrides={"host": host, "port": port, "workers": workers})
    run_server(settings, demo_mode=demo)


reports_cli.register(app)  # report, compare


# -- config and db ------------------------------------------------------------------------------


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print every setting with its effective value."""
    settings = load_settings()
    values = {name: getattr(settings, name) for name in setting_help()}
    if as_json:
        print_json(values)
        return
    table = Table("setting", "value", "environment variable")
    for name, value in values.items():
        table.add_row(name, repr(value), "CLICKTRAIL_" + name.upper())
    out.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database schema (the server also does this at start)."""
    c = container()
    c.engine  # noqa: B018 - building the engine migrates
    out.print(f"database is up to date: {c.settings.database_label}", markup=False)


def main() -> None:
    """Entry point of the `clicktrail` command."""
    app()
