"""`clicktrail attribution`: attribution settings, re-attribution and the conversions report
(docs/attribution.md).

Thin commands: parse, call `services.attribution`, print. Errors reach the root command, which
maps them to messages and exit codes (bad input: 2, nothing written; unknown campaign: 3).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.attribution import METRICS, ConversionFigures
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.services import attribution, exports, multitouch, workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.reports import find_campaign

app = typer.Typer(
    help="Attribution: which touch gets the credit for a conversion; models, windows and the "
    "conversions report (docs/attribution.md).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)

CampaignOpt = Annotated[
    str | None,
    typer.Option("--campaign", "-c", help="A campaign's settings (slug or id) instead of the "
                 "workspace's."),
]  # fmt: skip
ModelOpt = Annotated[
    str | None,
    typer.Option(help="last_click (default), first_click or last_touch (view-through)."),
]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _open(
    workspace: str | None, campaign: str | None
) -> tuple[Container, Workspace, Campaign | None]:
    c = Container(load_settings())
    ws = workspaces.resolve_workspace(c.workspaces, workspace)
    cp = None if campaign is None else find_campaign(c.report_queries, ws, campaign)
    return c, ws, cp


def _show(view: attribution.SettingsView, as_json: bool) -> None:
    d = view.as_dict()
    if as_json:
        _print_json(d)
        return
    src = d["source"]
    out.print(f"model            {d['model']} ({src['model']})")
    out.print(f"click window     {d['click_window']} ({src['click_window']})")
    out.print(f"delivery window  {d['delivery_window']} ({src['delivery_window']})")
    if d["reattribution_pending"]:
        out.print("re-attribution of the history under these settings is under way")


@app.command("show")
def attribution_show(
    campaign: CampaignOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Show the attribution settings in force (and where each comes from)."""
    c, ws, cp = _open(workspace, campaign)
    try:
        _show(attribution.view(c.attribution, ws, cp), as_json)
    finally:
        c.dispose()


@app.command("set")
def attribution_set(
    model: ModelOpt = None,
    click_window: Annotated[
        str | None,
        typer.Option(
            help="How long after a click a conversion is credited to it: 1h, 24h, "
            "7d or any whole s/m/h/d up to 90d; 'inherit' clears it."
        ),
    ] = None,
    delivery_window: Annotated[
        str | None,
        typer.Option(
            help="How long after a delivery a conversion is credited to an unclicked "
            "message (last_touch); same forms."
        ),
    ] = None,
    campaign: CampaignOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the workspace's (or a campaign's) model and windows. A window change
    re-attributes the history in the jobs process (or now: `attribution rerun`)."""
    c, ws, cp = _open(workspace, campaign)
    try:
        attribution.set_settings(
            c.attribution, ws, cp, model=model, click_window=click_window,
            delivery_window=delivery_window, now_us=now_us(),
        )  # fmt: skip
        _show(attribution.view(c.attribution, ws, cp), as_json)
    finally:
        c.dispose()


@app.command("rerun")
def attribution_rerun(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Re-attribute every conversion of the workspace now, under its settings now."""
    c, ws, _ = _open(workspace, None)
    started = time.perf_counter()
    try:
        attribution.request_reattribution(c.attribution, [ws.id], now_us())
        done = attribution.reattribute(c.attribution, ws.id, now_us())
    finally:
        c.dispose()
    seconds = time.perf_counter() - started
    if as_json:
        _print_json({"attributed": done.attributed, "finished": bool(done.reattributed),
                     "seconds": round(seconds, 3)})  # fmt: skip
        return
    state = "done" if done.reattributed else "stopped: the settings changed meanwhile"
    out.print(f"{done.attributed} conversions re-attributed in {seconds:.1f} s ({state})")


HalfLifeOpt = Annotated[
    str | None, typer.Option(help="Time-decay half-life, 1h to 90d (default 7d).")
]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


def _rows(f: ConversionFigures) -> list[tuple[str, str]]:
    money = "; ".join(f"{r.currency} {r.revenue:,.2f}" for r in f.revenue) or "—"
    rpm = "; ".join(f"{r.currency} {r.rpm:,.4f}" for r in f.revenue if r.rpm is not None) or "—"
    aov = "; ".join(f"{r.currency} {r.aov:,.2f}" for r in f.revenue if r.aov is not None) or "—"
    t = f.time_to_convert
    median = "—" if t.median_s is None else f"{t.median_s / 3600:.1f} h"
    return [
        ("conversions (click / view)",
         f"{f.conversions:g} ({f.click_conversions:g} / {f.view_conversions:g})"),
        ("converters (click-credited)", f"{f.converters} ({f.click_converters})"),
        ("conversion rate (per delivered)", _pct(f.conversion_rate)),
        ("CTCR (click converters / clickers)", _pct(f.ctcr)),
        ("revenue", money), ("RPM (revenue / delivered)", rpm), ("AOV", aov),
        ("median click to conversion", median),
    ]  # fmt: skip


@app.command("report")
def attribution_report(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    model: ModelOpt = None,
    multi_touch: Annotated[
        bool,
        typer.Option(
            "--multi-touch",
            help="Add the campaign's multi-touch credit under every "
            "model (computed over the workspace's conversions: slower).",
        ),
    ] = False,
    half_life: HalfLifeOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A campaign's conversions: rates, revenue, RPM, AOV, time to convert, per link; with
    --multi-touch, its multi-touch credit too."""
    hl = multitouch.half_life_us(half_life)
    c, ws, _ = _open(workspace, None)
    try:
        r = attribution.campaign_conversions(c.attribution, c.report_queries, ws, campaign, model)
        share = None
        if multi_touch:
            shares = multitouch.channel_report(c.multitouch, ws, hl)
            share = multitouch.campaign_share(shares, r.campaign)
    finally:
        c.dispose()
    if as_json:
        _print_json(r.as_dict() if share is None else {**r.as_dict(), "multi_touch": share})
        return
    s = r.settings
    t = Table(title=f"{r.name} ({r.campaign}): conversions", show_header=False)
    t.add_row("settings", f"{s.model}, click window {s.as_dict()['click_window']}, delivery "
              f"window {s.as_dict()['delivery_window']}")  # fmt: skip
    t.add_row("delivered / unique clickers", f"{r.delivered} / {r.unique_clicks}")
    for label, value in _rows(r.figures):
        t.add_row(label, value)
    out.print(t)
    links = Table("link", "url", "conversions", "CTCR", "revenue")
    for x in r.links:
        rev = "; ".join(f"{v.currency} {v.revenue:,.2f}" for v in x.figures.revenue) or "—"
        links.add_row(str(x.link), x.url, f"{x.figures.conversions:g}", _pct(x.figures.ctcr), rev)
    out.print(links)
    if r.reattribution_pending:
        out.print("[yellow]re-attribution under new settings is under way[/]")
    if r.unsettled:
        out.print(f"{r.unsettled} credits wait for final bot verdicts")
    if share is not None:
        hs = share["settings"]
        mt = Table("model", "credit", "revenue", title=f"multi-touch credit of {r.campaign}'s "
                   f"SMS touches ({share['touches']} touches in {share['conversions']} "
                   f"conversions' paths; half-life {hs['half_life']})")  # fmt: skip
        for m, credit in share["credit"].items():
            rev = "; ".join(f"{x['currency']} {x[m]:,.2f}" for x in share["revenue"]) or "—"
            mt.add_row(m, f"{credit:.4f}", rev)
        out.print(mt)
    out.print(f"[dim]{METRICS}[/]")


@app.command("channels")
def attribution_channels(
    half_life: HalfLifeOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Conversions from this time on (ISO 8601 or Unix seconds).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Conversions before this time.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Multi-touch credit per channel and campaign: linear, time-decay, position-based and last
    click side by side (computed now, from the touches, verdicts and windows as they are)."""
    hl = multitouch.half_life_us(half_life)
    since_us, until_us = exports.time_param(since, "since"), exports.time_param(until, "until")
    c, ws, _ = _open(workspace, None)
    try:
        r = multitouch.channel_report(c.multitouch, ws, hl, since_us, until_us)
    finally:
        c.dispose()
    d = r.as_dict()
    if as_json:
        _print_json(d)
        return
    s = d["settings"]
    out.print(f"{d['conversions']} conversions, {d['with_touches']} with touches; half-life "
              f"{s['half_life']}, click window {s['click_window']}, delivery window "
              f"{s['delivery_window']}, touchpoints {s['touchpoint_window']}")  # fmt: skip
    for title, key, rows in (("channel", ("channel",), d["channels"]),
                             ("campaign", ("channel", "campaign"), d["campaigns"])):  # fmt: skip
        t = Table(*key, "touches", "conversions", *d["models"], title=f"credit per {title}")
        for row in rows:
            t.add_row(*(str(row[k] or "—") for k in key), str(row["touches"]),
                      str(row["conversions"]), *(f"{row['credit'][m]:.4f}" for m in d["models"]))  # fmt: skip
        out.print(t)
