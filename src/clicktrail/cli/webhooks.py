"""`clicktrail webhooks`: a workspace's webhook endpoints, for the operator: add, list, show,
change, enable, disable, rotate the secret, remove; their deliveries and log, replay
(docs/webhooks.md).

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
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.events import EVENT_TYPES
from clicktrail.domain.report import iso_us
from clicktrail.services import deliveries, keys, webhooks
from clicktrail.services.clock import now_us
from clicktrail.services.deliveries import Delivery
from clicktrail.services.receipts import parse_time
from clicktrail.services.webhooks import Endpoint, EndpointChange

app = typer.Typer(
    help="Webhook endpoints of a workspace: signed event deliveries (docs/webhooks.md).",
    no_args_is_help=True,
)

EndpointArg = Annotated[
    str, typer.Argument(help="The endpoint's id (ep_…, from `webhooks list`).", metavar="ENDPOINT",
                        show_default=False)
]  # fmt: skip
DeliveryArg = Annotated[
    str, typer.Argument(help="The delivery's id (dlv_…, from `webhooks deliveries`).",
                        metavar="DELIVERY", show_default=False)
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


def _delivery_dict(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.public_id, "endpoint": d.endpoint, "event": d.event, "type": d.event_type,
        "state": d.state, "attempts": d.attempts,
        "next_attempt_at": iso_us(d.next_attempt_us) if d.state == "pending" else None,
        "last_attempt_at": iso_us(d.last_attempt_us), "last_status": d.last_status,
        "last_error": d.last_error, "created_at": iso_us(d.created_us),
        "completed_at": iso_us(d.completed_us),
    }  # fmt: skip


@app.command("deliveries")
def webhooks_deliveries(
    endpoint: EndpointArg,
    state: Annotated[
        str | None, typer.Option(help="Only deliveries in this state: pending, succeeded, failed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List an endpoint's deliveries, newest first: state, attempts, last status or error."""
    if state is not None and state not in ("pending", "succeeded", "failed"):
        raise InvalidInput("--state must be pending, succeeded or failed", field="state")
    c = container()
    try:
        ws = workspace_of(c, workspace)
        page = deliveries.list_deliveries(
            c.deliveries, c.webhooks, ws, endpoint, limit, None, state
        )
    finally:
        c.dispose()
    if as_json:
        print_json([_delivery_dict(d) for d in page.items])
        return
    table = Table("id", "event", "type", "state", "attempts", "last status", "last attempt")
    for d in page.items:
        last = str(d.last_status) if d.last_status is not None else (d.last_error or "")
        table.add_row(d.public_id, d.event, d.event_type, d.state, str(d.attempts), last,
                      iso_us(d.last_attempt_us) or "")  # fmt: skip
    out.print(table)


@app.command("delivery")
def webhooks_delivery(delivery: DeliveryArg, workspace: WorkspaceOpt = None) -> None:
    """Show a delivery and its log (every attempt: status or error, duration) as JSON."""
    c = container()
    try:
        d, log = deliveries.get_delivery(c.deliveries, workspace_of(c, workspace), delivery)
    finally:
        c.dispose()
    attempts = [
        {"attempt": a.attempt, "at": iso_us(a.at_us), "status": a.status, "error": a.error,
         "duration_ms": round(a.duration_us / 1000, 3), "response": a.response}
        for a in log
    ]  # fmt: skip
    print_json({**_delivery_dict(d), "log": attempts})


@app.command("replay")
def webhooks_replay(delivery: DeliveryArg, workspace: WorkspaceOpt = None) -> None:
    """Send a delivery again (same webhook-id, attempts start over) by the jobs process."""
    c = container()
    try:
        d = deliveries.replay(c.deliveries, workspace_of(c, workspace), delivery, now_us())
    finally:
        c.dispose()
    out.print(f"{d.public_id} ({d.event_type}, {d.event}) is due now", markup=False)


@app.command("replay-since")
def webhooks_replay_since(
    endpoint: EndpointArg,
    since: Annotated[str, typer.Option(help="ISO 8601 time (UTC) or Unix seconds.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Send an endpoint every event of its types since a time again (or for the first time:
    events of while it was disabled)."""
    now = now_us()
    at = parse_time(since, "since", now)
    c = container()
    try:
        n = deliveries.replay_since(c.deliveries, c.webhooks, workspace_of(c, workspace),
                                    endpoint, at, now)  # fmt: skip
    finally:
        c.dispose()
    out.print(f"{n} deliveries to {endpoint} are due now", markup=False)
