"""`clicktrail campaign create --variant …` (the options' parsing) and `clicktrail campaign
variants`: a campaign's A/B variants, what each costs and the report per variant
(docs/experiments.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from clicktrail.cli.options import JsonOpt, WorkspaceOpt, container, out, print_json, workspace_of
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.variants import Variant
from clicktrail.services import campaigns, variants
from clicktrail.services.campaigns import Preview

VariantOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--variant",
        help="An A/B variant NAME:TEXT (repeat: 2-10; the first is the control; {variant} is "
        "its name). Instead of --template.",
    ),
]
SharesOpt = Annotated[
    str | None,
    typer.Option(
        "--shares", help="The variants' split as whole weights in their order, e.g. 70,30 "
        "(default: equal)."
    ),
]  # fmt: skip
VariantSeedOpt = Annotated[
    int | None, typer.Option(help="Seed of the variant draw (default: drawn at random).")
]


def parse_variants(values: list[str] | None, shares: str | None) -> list[Variant] | None:
    """Return the variants of `--variant NAME:TEXT` options with `--shares` (None: none given).
    Raises `InvalidInput` naming the option."""
    if not values:
        if shares is not None:
            raise InvalidInput("--shares needs --variant options", field="shares")
        return None
    weights = [1] * len(values)
    if shares is not None:
        parts = [p.strip() for p in shares.split(",")]
        if len(parts) != len(values) or not all(p.isdigit() for p in parts):
            raise InvalidInput(
                f"--shares {shares!r}: give one whole number per variant ({len(values)}), "
                "e.g. 70,30",
                field="shares",
            )
        weights = [int(p) for p in parts]
    out_: list[Variant] = []
    for v, w in zip(values, weights, strict=True):
        name, sep, text = v.partition(":")
        if not sep:
            raise InvalidInput(f"--variant {v[:40]!r}: expected NAME:TEXT", field="variant")
        out_.append(Variant(name.strip(), text, w))
    return out_


def show_variants(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a campaign's A/B variants: share, what each costs wrapped for the first recipient,
    and the report per variant (CTR with Wilson 95 % intervals, each against the control,
    P(best), the sample-ratio check). --json prints what GET
    /v1/campaigns/CAMPAIGN/variants/report returns, with each variant's preview."""
    c = container()
    ws = workspace_of(c, workspace)
    cp = campaigns.get_campaign(c.campaigns, ws, campaign)
    report = variants.variant_report(c.report_queries, ws, cp)
    spec = cp.options.variants
    assert spec is not None
    previews: dict[str, Preview] = {
        v.name: campaigns.preview_campaign(c, ws, cp, variant=v.name) for v in spec.variants
    }
    if as_json:
        print_json({
            **report,
            "costs": {n: {"tracked": p.cost.__dict__, "worst_case": p.worst_case.__dict__}
                      for n, p in previews.items()},
        })  # fmt: skip
        return
    out.print(f"campaign {cp.slug}: control {spec.variants[0].name}, seed {spec.seed}")
    t = Table("variant", "share", "encoding", "segments", "worst case")
    for v in spec.variants:
        p = previews[v.name]
        t.add_row(
            v.name, str(v.share), p.cost.encoding, str(p.cost.segments),
            f"{p.worst_case.segments} ({p.worst_case.encoding})",
        )  # fmt: skip
    out.print(t)
    rows = report["variants"]
    assert isinstance(rows, list)
    r = Table("variant", "messages", "delivered", "clickers", "CTR", "95 % CI", "vs control",
              "p", "P(best)")  # fmt: skip
    for row in rows:
        ci, vs = row["ctr_interval"], row["versus_control"]
        r.add_row(
            row["name"], str(row["messages"]), str(row["delivered"]),
            str(row["unique_clickers"]), _pct(row["ctr"]),
            "—" if ci is None else f"{_pct(ci['low'])}–{_pct(ci['high'])}",
            "—" if vs is None else f"{vs['difference']:+.2%} "
            f"[{vs['interval']['low']:+.2%}, {vs['interval']['high']:+.2%}]",
            "—" if vs is None else f"{vs['p_value']:.3g}", f"{row['probability_best']:.1%}",
        )  # fmt: skip
    out.print(r)
    ratio = report["sample_ratio"]
    if isinstance(ratio, dict):
        verdict = "MISMATCH: the split is broken" if ratio["mismatch"] else "ok"
        out.print(f"sample ratio: p = {ratio['p_value']:.3g} ({verdict})")
    out.print("conversions per variant: not reported yet (docs/experiments.md)")


def _pct(x: object) -> str:
    return "—" if not isinstance(x, float) else f"{x:.1%}"
