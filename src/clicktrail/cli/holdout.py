"""`clicktrail campaign lift|holdout-size`: a campaign's lift against its holdout, and the power
calculator before a send; the holdout options of `campaign create` (docs/attribution.md,
"Holdout and lift").

Registered on the `campaign` group by the root command (``holdout.register(campaign_app)``);
errors from services reach the root command, which maps them to messages and exit codes.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import workspaces
from clicktrail.services.clock import now_us
from clicktrail.services.incrementality import Interval, LiftReport, campaign_lift, holdout_size

out = Console(highlight=False, soft_wrap=True)

HoldoutOpt = Annotated[
    str | None,
    typer.Option(
        "--holdout",
        help="Hold out this share of the audience (e.g. 10% or 0.1, at most 50%): they get "
        "nothing, and their conversions are the baseline of `campaign lift`.",
    ),
]
HoldoutSeedOpt = Annotated[
    int | None,
    typer.Option(help="Seed of the holdout's draw (default: a random one, recorded)."),
]
HoldoutStratifyOpt = Annotated[
    str | None,
    typer.Option(
        help="Stratify the holdout by contact 'list' or by 'attribute:NAME' (by segment once "
        "segments exist)."
    ),
]


def parse_share(raw: str | None, option: str = "--holdout") -> float | None:
    """Return a share written ``10%`` or ``0.1`` as a fraction (None when not given).

    Raises `InvalidInput` naming the option."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InvalidInput(
            f"{option} {raw!r}: expected a share such as 10% or 0.1", field=option.lstrip("-")
        ) from None
    return value


def holdout_size_command(
    audience: Annotated[int, typer.Option(help="Contacts the campaign will reach.")],
    baseline: Annotated[
        str, typer.Option(help="Conversion rate without the campaign (e.g. 4% or 0.04).")
    ],
    mde: Annotated[
        str,
        typer.Option(
            help="Minimum detectable effect: the smallest absolute lift of the conversion rate "
            "worth detecting (e.g. 1% for 4% → 5%)."
        ),
    ],
    alpha: Annotated[float, typer.Option(help="Significance level (two-sided).")] = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect a lift of --mde.")] = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """How big a holdout must be to detect a lift (power calculator, before sending)."""
    base = parse_share(baseline, "--baseline")
    effect = parse_share(mde, "--mde")
    assert base is not None
    assert effect is not None
    plan = holdout_size(audience, base, effect, alpha=alpha, power=power)
    if as_json:
        sys.stdout.write(json.dumps(plan.as_dict(), indent=2) + "\n")
        return
    goal = (
        f"to detect {base:.2%} → {base + effect:.2%} (+{effect:.2%}) with {power:.0%} power "
        f"at α = {alpha:g}"
    )
    if not plan.reachable:
        out.print(
            f"not reachable {goal}: even half of {audience:,} contacts held out gives "
            f"{plan.power_at_max:.0%} power; reach more contacts or look for a larger effect",
            markup=False,
        )
        raise typer.Exit(1)
    assert plan.share is not None
    out.print(
        f"hold out {plan.holdout:,} of {audience:,} contacts ({plan.share:.2%}; "
        f"--holdout {plan.share:.4f}) {goal}",
        markup=False,
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _ci(ci: Interval | None, fmt: str = "{:+.2%}") -> str:
    return "n/a" if ci is None else f"[{fmt.format(ci.low)}, {fmt.format(ci.high)}]"


def print_lift(r: LiftReport) -> None:
    """Print a lift report for people."""
    s, d = r.stats, r.draw
    out.print(
        f"campaign {r.slug}: holdout {d.held:,} of {d.eligible:,} reachable contacts "
        f"({d.spec.share:.0%}, seed {d.spec.seed}"
        + (f", stratified by {d.spec.stratify}" if d.spec.stratify else "")
        + ")",
        markup=False,
    )
    days = (r.window_end_us - r.window_start_us) / 86_400_000_000
    out.print(
        f"window: {days:g} days from the send ({r.window_source})"
        + (", still open: figures may change" if r.window_open else "")
        + (f"; event {r.event}" if r.event else "; any event"),
        markup=False,
    )
    out.print(
        f"treated (delivered): {r.treated.converted:,} of {r.treated.contacts:,} converted "
        f"({_pct(s.treated_rate)}); holdout: {r.holdout.converted:,} of "
        f"{r.holdout.contacts:,} ({_pct(s.holdout_rate)})",
        markup=False,
    )
    absolute = "n/a" if s.absolute_lift is None else f"{s.absolute_lift:+.2%}"
    relative = "n/a" if s.relative_lift is None else f"{s.relative_lift:+.1%}"
    p = "n/a" if s.p_value is None else f"{s.p_value:.4f}"
    out.print(
        f"lift: {absolute} points, 95 % CI {_ci(s.absolute_interval)}; relative {relative}, "
        f"95 % CI {_ci(s.relative_interval, '{:+.1%}')}; p = {p}",
        markup=False,
    )
    for rev in s.revenue:
        out.print(
            f"revenue per recipient ({rev.currency}): {rev.treated_per_recipient:.2f} vs "
            f"{rev.holdout_per_recipient:.2f}, lift {rev.lift:+.2f}, 95 % bootstrap CI "
            f"{_ci(rev.interval, '{:+.2f}')}",
            markup=False,
        )
    if s.too_small:
        out.print(f"too small a sample to trust: {s.too_small}", markup=False)
    if s.detectable_lift is not None:
        out.print(
            f"these arms detect a lift of {s.detectable_lift:+.2%} points or more with 80 % power",
            markup=False,
        )


def lift_command(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    event: Annotated[
        str | None, typer.Option(help="Count only this conversion event (default: any).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A campaign's lift against its holdout: conversion rates, lift with 95 % intervals,
    p-value, revenue per recipient."""
    c = Container(load_settings())
    ws = workspaces.resolve_workspace(c.workspaces, workspace)
    report = campaign_lift(
        c.campaigns, c.holdouts, ws, campaign, now_us=now_us(), event=event,
        window_for=c.lift_window,
    )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return
    print_lift(report)


def register(campaign_app: typer.Typer) -> None:
    """Add the holdout commands to the `campaign` group."""
    campaign_app.command("lift")(lift_command)
    campaign_app.command("holdout-size")(holdout_size_command)
