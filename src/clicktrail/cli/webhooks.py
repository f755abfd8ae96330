"""`clicktrail webhooks`: a workspace's webhook endpoints, for the operator: add, list, show,
change, enable, disable, rotate the secret, remove (docs/webhooks.md).

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, not found: 3, conflict: 4); nothing is written then. A new or rotated secret is
printed on stdout alone on its line (``SECRET=$(clicktrail webhooks add …)``); everything else
goes to stderr or, with ``--json``, to stdout as one JSON document.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

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
from clicktrail.domain.events import EVENT_TYPES
from clicktrail.domain.report import iso_us
from clicktrail.services import keys, webhooks
from clicktrail.services.clock import now_us
from clicktrail.services.webhooks import Endpoint, EndpointChange

app = typer.Typer(
    help="Webhook endpoints of a workspace: signed event deliveries (docs/webhooks.md).",
    no_args_is_help=True,
)

EndpointArg = Annotated[
    str, typer.Argument(help="The endpoint's id (ep_…, from `webhooks list`).", metavar="ENDPOINT",
                        show_default=False)
]  # fmt: skip
EventsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--event", "-e", help=f"An event type to send (repeat): {', '.join(EVENT_TYPES)}."
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option(help="What the endpoint is for.")]
HumansOpt = Annotated[
    bool | None,
    typer.Option("--humans-only/--all-clicks", help="click.created: leave out bots' clicks."),
]
ProvisionalOpt = Annotated[
    bool | None,
    typer.Option(
        "--provisional/--final",
        help="click.created: send at once with the request-level verdict, or once it is final.",
    ),
]


def endpoint_dict(ep: Endpoint, now: int, *, secret: bool = False) -> dict[str, Any]:
    """Return `ep` as the API shows it (with its secret when `secret`)."""
    grace = (
        ep.old_secret_until_us if ep.old_secret and (ep.old_secret_until_us or 0) > now else None
    )
    d = {
        "id": ep.public_id, "url": ep.url, "description": ep.description,
        "events": list(ep.event_types), "humans_only": ep.humans_only,
        "provisional": ep.provisional, "state": "enabled" if ep.enabled else "disabled",
        "disabled_reason": ep.disabled_reason, "disabled_at": iso_us(ep.disabled_us),
        "failures": ep.failures, "failing_since": iso_us(ep.failing_since_us),
        "previous_secret_until": iso_us(grace), "created_at": iso_us(ep.created_us),
        "updated_at": iso_us(ep.updated_us),
    }  # fmt: skip
    if secret:
        d["secret"] = ep.secret
    return d


def _show_secret(ep: Endpoint, now: int, as_json: bool, what: str) -> None:
    if as_json:
        print_json(endpoint_dict(ep, now, secret=True))
        return
    sys.stdout.write(ep.secret + "\n")
    err.print(f"{ep.public_id} {what}: {ep.url} ({', '.join(ep.event_types)}).", markup=False)


@app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to POST events (https, a public address).")],
    event: EventsOpt = None,
    description: DescriptionOpt = None,
    humans_only: HumansOpt = None,
    provisional: ProvisionalOpt = None,
    secret: Annotated[str | None, typer.Option(help="A whsec_ secret of your own.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint; its signing secret is printed on stdout."""
    now = now_us()
    c = container()
    try:
        ws = workspace_of(c, workspace)
        ep = webhooks.create_endpoint(
            c.webhooks, ws, url, event or [], now, c.outbound.check_url,
            description=description, humans_only=bool(humans_only),
            provisional=bool(provisional), secret=secret,
        )  # fmt: skip
    finally:
        c.dispose()
    _show_secret(ep, now, as_json, "added")


@app.command("list")
def webhooks_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's endpoints (never their secrets)."""
    c = container()
    try:
        ws = workspace_of(c, workspace)
        items = webhooks.list_endpoints(c.webhooks, ws, webhooks.MAX_ENDPOINTS, None).items
    finally:
        c.dispose()
    now = now_us()
    if as_json:
        print_json([endpoint_dict(x, now) for x in items])
        return
    table = Table("id", "url", "events", "state", "failures")
    for x in items:
        state = "enabled" if x.enabled else f"disabled: {x.disabled_reason}"
        table.add_row(x.public_id, x.url, ", ".join(x.event_types), state, str(x.failures))
    out.print(table)


@app.command("show")
def webhooks_show(
    endpoint: EndpointArg,
    secret: Annotated[bool, typer.Option("--secret", help="Include the signing secret.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show an endpoint as JSON (with `--secret`, its signing secret too)."""
    c = container()
    try:
        ep = webhooks.get_endpoint(c.webhooks, workspace_of(c, workspace), endpoint)
    finally:
        c.dispose()
    print_json(endpoint_dict(ep, now_us(), secret=secret))


def _update(endpoint: str, change: EndpointChange, workspace: str | None, as_json: bool) -> None:
    now = now_us()
    c = container()
    try:
        ws = workspace_of(c, workspace)
        ep = webhooks.update_endpoint(c.webhooks, ws, endpoint, change, now, c.outbound.check_url)
    finally:
        c.dispose()
    if as_json:
        print_json(endpoint_dict(ep, now))
    else:
        state = "enabled" if ep.enabled else f"disabled ({ep.disabled_reason})"
        out.print(f"{ep.public_id}: {ep.url}, {', '.join(ep.event_types)}, {state}", markup=False)


@app.command("update")
def webhooks_update(
    endpoint: EndpointArg,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    event: EventsOpt = None,
    description: DescriptionOpt = None,
    humans_only: HumansOpt = None,
    provisional: ProvisionalOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an endpoint (options not given stay as they are; --event replaces the list)."""
    change = EndpointChange(
        url=url, event_types=tuple(event) if event else None, description=description,
        humans_only=humans_only, provisional=provisional,
    )  # fmt: skip
    _update(endpoint, change, workspace, as_json)


@app.command("enable")
def webhooks_enable(
    endpoint: EndpointArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Enable an endpoint again (its failure run starts over; pending deliveries are sent)."""
    _update(endpoint, EndpointChange(enabled=True), workspace, as_json)


@app.command("disable")
def webhooks_disable(
    endpoint: EndpointArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Disable an endpoint: nothing is sent to it until it is enabled again."""
    _update(endpoint, EndpointChange(enabled=False), workspace, as_json)


@app.command("rotate-secret")
def webhooks_rotate(
    endpoint: EndpointArg,
    grace: Annotated[
        str, typer.Option(help="How long the old secret keeps signing too (at most 7d; 0: none).")
    ] = "1d",
    secret: Annotated[
        str | None, typer.Option(help="The new whsec_ secret (default: random).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give an endpoint a new secret (printed on stdout); the old one signs too for --grace."""
    now = now_us()
    grace_us = keys.parse_duration(grace, "grace")
    c = container()
    try:
        ws = workspace_of(c, workspace)
        ep = webhooks.rotate_secret(c.webhooks, ws, endpoint, now, grace_us=grace_us, secret=secret)
    finally:
        c.dispose()
    _show_secret(ep, now, as_json, "rotated")
    if not as_json and ep.old_secret_until_us and ep.old_secret_until_us > now:
        err.print(f"The old secret signs too until {iso_us(ep.old_secret_until_us)}.", markup=False)


@app.command("remove")
def webhooks_remove(endpoint: EndpointArg, workspace: WorkspaceOpt = None) -> None:
    """Delete an endpoint with its deliveries and their log."""
    c = container()
    try:
        webhooks.delete_endpoint(c.webhooks, workspace_of(c, workspace), endpoint)
    finally:
        c.dispose()
    out.print(f"removed {endpoint}", markup=False)
