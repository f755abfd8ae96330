"""`clicktrail engagement`: contacts' engagement scores — why a contact has its score, the
workspace's scoring settings, a full recompute after they change (docs/segments.md).

Errors from services reach the root command, which maps them to messages and exit codes (bad
input: 2, nothing written; an unknown contact: 3).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from clicktrail.cli.options import (
    JsonOpt,
    WorkspaceOpt,
    container,
    out,
    print_json,
    workspace_of,
)
from clicktrail.services import engagement
from clicktrail.services.clock import now_us
from clicktrail.web.api_engagement import contact_out, settings_out

app = typer.Typer(
    help="Engagement scores: why a contact is at its score, scoring settings, recompute "
    "(docs/segments.md).",
    no_args_is_help=True,
)


@app.command("show")
def engagement_show(
    contact: Annotated[str, typer.Argument(help="Phone (E.164) or external id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a contact's score and every event behind it with its decayed value."""
    c = container()
    try:
        ws = workspace_of(c, workspace)
        got = engagement.explain_contact(c.contacts, c.engagement, ws, contact, now_us())
    finally:
        c.dispose()
    body = contact_out(got)
    if as_json:
        print_json(body.model_dump(mode="json"))
        return
    out.print(
        f"{body.phone} ({body.external_id or 'no external id'}): score {body.score:.1f}, "
        f"{body.band.replace('_', ' ')}" + (" (being updated)" if body.pending else "")
    )
    s = got.explanation.settings
    out.print(
        f"weights: click {s.click_weight:g}, conversion {s.conversion_weight:g}, preview "
        f"{s.preview_weight:g}; half-life {s.half_life_days:g} days"
    )
    table = Table("kind", "when", "what", "weight", "age (days)", "worth now")
    for e in body.events:
        table.add_row(e.kind, e.at, e.label or e.ref, f"{e.weight:g}", f"{e.age_days:.1f}",
                      f"{e.value:.2f}")  # fmt: skip
    out.print(table)
    more = body.events_total - len(body.events)
    if more:
        out.print(f"… and {more} smaller contributions")
    out.print(f"total {body.total:.2f}" + (" (capped at 100)" if body.total > 100 else ""))


@app.command("settings")
def engagement_settings(
    click_weight: Annotated[float | None, typer.Option(help="Points of a human click.")] = None,
    conversion_weight: Annotated[float | None, typer.Option(help="Points of a conversion.")] = None,
    preview_weight: Annotated[
        float | None, typer.Option(help="Points of a link-preview fetch.")
    ] = None,
    half_life_days: Annotated[
        float | None, typer.Option(help="Days after which an event is worth half.")
    ] = None,
    engaged_min: Annotated[
        float | None, typer.Option(help="Lowest score of the engaged band.")
    ] = None,
    at_risk_min: Annotated[
        float | None, typer.Option(help="Lowest score of the at-risk band.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the workspace's scoring settings, or change some (the jobs process then scores the
    kept scores again in the background: "rescoring: n of m")."""
    changes = {
        "click_weight": click_weight, "conversion_weight": conversion_weight,
        "preview_weight": preview_weight, "half_life_days": half_life_days,
        "engaged_min": engaged_min, "at_risk_min": at_risk_min,
    }  # fmt: skip
    c = container()
    try:
        ws = workspace_of(c, workspace)
        if any(v is not None for v in changes.values()):
            view = engagement.set_settings(c.engagement, ws, changes, now_us())
        else:
            view = engagement.get_settings(c.engagement, ws)
    finally:
        c.dispose()
    body = settings_out(view)
    if as_json:
        print_json(body.model_dump())
        return
    table = Table("setting", "value")
    for name, value in body.model_dump(exclude={"rescoring"}).items():
        table.add_row(name, f"{value:g}" if isinstance(value, float) else str(value))
    out.print(table)
    if view.stale:
        out.print(
            f"rescoring: {view.rescored} of {view.kept} kept scores are current; the jobs "
            f"process scores the rest again in the background (or now: `clicktrail engagement "
            f"recompute -w {ws.slug}`)",
            markup=False,
        )


@app.command("recompute")
def engagement_recompute(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Compute every contact's score again from its events, with the settings in force."""
    c = container()
    try:
        ws = workspace_of(c, workspace)
        seen = engagement.recompute(c.engagement, ws, now_us())
        view = engagement.get_settings(c.engagement, ws)
    finally:
        c.dispose()
    if as_json:
        print_json({"contacts": seen, "revision": view.revision, "stale_scores": view.stale})
        return
    out.print(f"{seen} contacts scored under settings revision {view.revision}")
