"""`clicktrail automations`: a workspace's automations, for the operator: add, list, show,
enable, disable, remove, and each one's runs (docs/automations.md).

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, not found: 3, conflict: 4); nothing is written then. `show` and ``--json`` print the
automation as the API shows it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from clicktrail.cli.options import JsonOpt, WorkspaceOpt, container, out, print_json, workspace_of
from clicktrail.domain import automations as au
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.report import iso_us
from clicktrail.services import automation_runs, automations
from clicktrail.services.automation_runs import Run
from clicktrail.services.automations import Action, Automation, AutomationChange
from clicktrail.services.clock import now_us

app = typer.Typer(
    help="Automations of a workspace: follow-ups, webhooks and segment changes triggered by "
    "clicks, deliveries and opt-ins (docs/automations.md).",
    no_args_is_help=True,
)

AutomationArg = Annotated[
    str, typer.Argument(help="The automation's id (au_…, from `automations list`).",
                        metavar="AUTOMATION", show_default=False)
]  # fmt: skip


def automation_dict(a: Automation) -> dict[str, Any]:
    """Return `a` as the API shows it (absent parts as null)."""
    r = au.rule_json(a.rule)
    t, c, x = r["trigger"], r["conditions"], r["action"]
    return {
        "id": a.public_id, "name": a.name, "enabled": a.enabled,
        "trigger": {k: t.get(k) for k in ("kind", "campaign", "link", "within")},
        "delay": r["delay"],
        "conditions": {k: c.get(k) for k in ("quiet_hours", "frequency_cap", "segment",
                                             "in_segment")},
        "action": {k: x.get(k) for k in ("kind", "template", "campaign", "endpoint", "segment")},
        "created_at": iso_us(a.created_us), "updated_at": iso_us(a.updated_us),
    }  # fmt: skip


def _cap(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    count, _, per = text.partition("/")
    if not count.isdigit() or per not in au.CAP_PERIODS:
        raise InvalidInput(
            f"--cap {text!r}: expected COUNT/day or COUNT/week, e.g. 1/day",
            field="conditions.frequency_cap",
        )
    return int(count), per


def _action(
    send: str | None, via: str | None, webhook: str | None, add: str | None, remove: str | None
) -> Action:
    given = [x for x in (send, webhook, add, remove) if x is not None]
    if len(given) != 1:
        raise InvalidInput(
            "give one action: --send, --webhook, --add-to-segment or --remove-from-segment",
            field="action.kind",
        )
    if via is not None and send is None:
        raise InvalidInput("--via goes with --send", field="action.campaign")
    if send is not None:
        return Action(au.SEND, template=send, campaign=via)
    if webhook is not None:
        return Action(au.WEBHOOK, endpoint=webhook)
    if add is not None:
        return Action(au.ADD_TO_SEGMENT, segment=add)
    return Action(au.REMOVE_FROM_SEGMENT, segment=remove)


@app.command("add")
def automations_add(
    name: Annotated[str, typer.Argument(help="A name, unique in the workspace.")],
    trigger: Annotated[str, typer.Option(help=f"What starts a run: {', '.join(au.TRIGGERS)}.")],
    campaign: Annotated[str | None, typer.Option(help="The trigger's campaign (slug).")] = None,
    link: Annotated[
        int | None, typer.Option(help="A link's number in the campaign's template (1: first).")
    ] = None,
    within: Annotated[
        str | None, typer.Option(help="not_clicked, clicked_no_conversion: the window (2d).")
    ] = None,
    delay: Annotated[str, typer.Option(help="Wait after the trigger (and --within).")] = "0",
    quiet_hours: Annotated[
        str | None, typer.Option(help="HH:MM-HH:MM in the contact's time zones: runs wait.")
    ] = None,
    cap: Annotated[
        str | None, typer.Option(help="At most COUNT/day or COUNT/week automated messages.")
    ] = None,
    segment: Annotated[str | None, typer.Option(help="Only members of this segment.")] = None,
    not_in_segment: Annotated[
        bool, typer.Option("--not-in-segment", help="Only contacts NOT in --segment.")
    ] = False,
    send: Annotated[str | None, typer.Option(help="Action: send this template.")] = None,
    via: Annotated[
        str | None, typer.Option(help="--send: whose provider sends (default: --campaign).")
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="Action: call this endpoint (ep_…).")] = None,
    add_to_segment: Annotated[str | None, typer.Option(help="Action: add to a segment.")] = None,
    remove_from_segment: Annotated[
        str | None, typer.Option(help="Action: remove from a segment.")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an automation; its rule is checked whole (each mistake named, nothing stored)."""
    rule = au.check_rule(
        automations.trigger_of(trigger, campaign, link, within),
        automations.delay_of(delay),
        automations.conditions_of(quiet_hours, _cap(cap), segment, not not_in_segment),
        _action(send, via, webhook, add_to_segment, remove_from_segment),
    )
    c = container()
    try:
        ws = workspace_of(c, workspace)
        a = automations.create_automation(c, ws, name, rule, now_us(), enabled=not disabled)
    finally:
        c.dispose()
    if as_json:
        print_json(automation_dict(a))
    else:
        out.print(f"{a.public_id} added: {a.name}", markup=False)


@app.command("list")
def automations_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List a workspace's automations."""
    c = container()
    try:
        ws = workspace_of(c, workspace)
        limit = automations.MAX_AUTOMATIONS
        items = automations.list_automations(c.automations, ws, limit, None).items
    finally:
        c.dispose()
    if as_json:
        print_json([automation_dict(x) for x in items])
        return
    table = Table("id", "name", "state", "trigger", "conditions", "action")
    for x in items:
        table.add_row(
            x.public_id, x.name, "enabled" if x.enabled else "disabled", *au.describe(x.rule)
        )
    out.print(table)


@app.command("show")
def automations_show(automation: AutomationArg, workspace: WorkspaceOpt = None) -> None:
    """Show an automation as JSON."""
    c = container()
    try:
        a = automations.get_automation(c.automations, workspace_of(c, workspace), automation)
    finally:
        c.dispose()
    print_json(automation_dict(a))


def _switch(automation: str, enabled: bool, workspace: str | None, as_json: bool) -> None:
    c = container()
    try:
        ws = workspace_of(c, workspace)
        change = AutomationChange(enabled=enabled)
        a = automations.update_automation(c, ws, automation, change, now_us())
    finally:
        c.dispose()
    if as_json:
        print_json(automation_dict(a))
    else:
        out.print(f"{a.public_id}: {'enabled' if a.enabled else 'disabled'}", markup=False)


@app.command("enable")
def automations_enable(
    automation: AutomationArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Enable an automation."""
    _switch(automation, True, workspace, as_json)


@app.command("disable")
def automations_disable(
    automation: AutomationArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Disable an automation."""
    _switch(automation, False, workspace, as_json)


@app.command("remove")
def automations_remove(automation: AutomationArg, workspace: WorkspaceOpt = None) -> None:
    """Delete an automation."""
    c = container()
    try:
        automations.delete_automation(c.automations, workspace_of(c, workspace), automation)
    finally:
        c.dispose()
    out.print(f"removed {automation}", markup=False)


def run_dict(r: Run) -> dict[str, Any]:
    """Return a run as the API shows it."""
    return {
        "id": r.public_id, "automation": r.automation, "phone": r.phone, "campaign": r.campaign,
        "trigger": r.trigger_key, "triggered_at": iso_us(r.trigger_us), "due_at": iso_us(r.due_us),
        "state": r.state, "reason": r.reason, "attempts": r.attempts,
        "fired_at": None if r.fired_us is None else iso_us(r.fired_us),
        "message": r.result if (r.result or "").startswith("msg_") else None,
        "created_at": iso_us(r.created_us), "updated_at": iso_us(r.updated_us),
    }  # fmt: skip


@app.command("runs")
def automations_runs(
    automation: AutomationArg,
    state: Annotated[str | None, typer.Option(
        help="Only runs in this state: pending, fired, cancelled, skipped, failed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (1 to 500).")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """List an automation's runs, newest first: what it fired, what is pending, what was
    cancelled or skipped and why."""
    if not 1 <= limit <= 500:
        raise InvalidInput("--limit must be from 1 to 500", field="limit")
    c = container()
    try:
        ws = workspace_of(c, workspace)
        page = automation_runs.list_runs(
            c.automations, c.automations.runs, ws, automation, limit, None, state
        )
    finally:
        c.dispose()
    if as_json:
        print_json([run_dict(x) for x in page.items])
        return
    table = Table("id", "phone", "trigger", "due", "state", "reason / message")
    for x in page.items:
        d = run_dict(x)
        table.add_row(x.public_id, x.phone, x.trigger_key, d["due_at"], x.state,
                      x.reason or d["message"] or "")  # fmt: skip
    out.print(table)
