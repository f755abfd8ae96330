"""A/B variants of a campaign: checked when it is created, what each costs, which recipient
gets which when it is sent, and the report per variant (docs/experiments.md)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain.bandit import ArmState
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign, Contact, Workspace
from clicktrail.domain.sms import analyze
from clicktrail.domain.template import Field, Template, check_fields, parse_template
from clicktrail.domain.variants import VARIANT_MACRO, Variant, VariantSpec, assign
from clicktrail.services import experiment_stats as stats


def variant_spec(variants: Sequence[Variant], seed: int | None = None) -> VariantSpec:
    """Return the spec of `variants` (seed drawn when not given), checked."""
    spec = VariantSpec(tuple(variants), secrets.randbits(63) if seed is None else seed)
    spec.check()
    return spec


def check_variant_templates(spec: VariantSpec, fields: Collection[str]) -> list[Template]:
    """Parse each variant's template against the placeholders `fields` (plus ``{variant}``);
    return them in order. Raises `InvalidInput` naming ``variants/N/template`` for a bad one,
    ``{click_id}`` in the text, or links that differ in number from the first variant's (link
    positions are shared: their roles and UTM parameters are the campaign's)."""
    parsed: list[Template] = []
    for i, v in enumerate(spec.variants):
        where = f"variants/{i}/template"
        try:
            t = parse_template(v.template)
            check_fields(t, {*fields, VARIANT_MACRO})
        except InvalidInput as exc:
            raise InvalidInput(f"variant {v.name}: {exc}", field=where) from exc
        if any(isinstance(p, Field) and p.name == "click_id" for p in t.parts):
            raise InvalidInput(
                f"variant {v.name}: {{click_id}} belongs in a link's URL", field=where
            )
        if parsed and len(t.links) != len(parsed[0].links):
            raise InvalidInput(
                f"variant {v.name}: has {len(t.links)} link(s), variant "
                f"{spec.variants[0].name} has {len(parsed[0].links)}: every variant needs the "
                "same number of links (their destinations may differ)",
                field=where,
            )
        parsed.append(t)
    return parsed


@dataclass(frozen=True)
class VariantCost:
    """What a variant's template costs as written (placeholders as they stand)."""

    name: str
    share: int
    encoding: str
    segments: int
    units: int


def variant_costs(campaign: Campaign) -> list[VariantCost]:
    """Each variant's template cost (empty for a campaign without variants)."""
    spec = campaign.options.variants
    if spec is None:
        return []
    out = []
    for v in spec.variants:
        info = analyze(v.template, shift_table=campaign.options.shift_table)
        out.append(VariantCost(v.name, v.share, info.encoding, info.segments, info.units))
    return out


class Assignment:
    """Which variant each recipient of a send gets: `domain.variants.assign` over the
    recipients as given (in contact id order), looked up by contact id."""

    def __init__(self, spec: VariantSpec, templates: Sequence[Template], ids: Sequence[int]):
        self.spec = spec
        self.templates = list(templates)
        labels = assign(len(ids), spec.shares, spec.seed)
        self._by_contact = dict(zip(ids, labels, strict=True))

    def of(self, contact: Contact) -> tuple[str, Template]:
        """The variant (name, parsed template) of `contact`; a contact that joined the
        audience after the draw gets the first variant."""
        i = self._by_contact.get(contact.id, 0)
        return self.spec.variants[i].name, self.templates[i]


# -- the report per variant -------------------------------------------------------------------


@dataclass(frozen=True)
class VariantFigures:
    """What storage counts per variant: messages, delivered ones, unique counted clickers
    (any message) and counted clickers among delivered messages (the CTR's numerator)."""

    name: str
    messages: int
    delivered: int
    clickers: int
    delivered_clickers: int


class VariantReportSource(Protocol):
    """Counts per variant (`storage.variants`)."""

    def variant_figures(self, campaign: Campaign) -> dict[str, VariantFigures]:
        """Return the figures of each variant that has messages, by name."""
        ...


def _interval(iv: stats.Interval | None) -> dict[str, float] | None:
    return None if iv is None else {"low": iv.low, "high": iv.high}


def variant_report(
    source: VariantReportSource, workspace: Workspace, campaign: Campaign
) -> dict[str, object]:
    """Return the report per variant of `campaign` (shape: `web.schemas_variants`). Raises
    `InvalidInput` (field ``campaign``) for a campaign without variants."""
    spec = campaign.options.variants
    if spec is None:
        raise InvalidInput(f"campaign {campaign.slug!r} has no variants", field="campaign")
    figures = source.variant_figures(campaign)
    rows = [figures.get(v.name) or VariantFigures(v.name, 0, 0, 0, 0) for v in spec.variants]
    arms = [ArmState(f.name, f.delivered, f.delivered_clickers) for f in rows]
    probs = stats.best_probabilities(arms, seed=spec.seed)
    ratio = stats.sample_ratio([f.messages for f in rows], [float(s) for s in spec.shares])
    out = []
    for i, (v, f, arm) in enumerate(zip(spec.variants, rows, arms, strict=True)):
        cmp = None if i == 0 else stats.compare(arms[0], arm)
        out.append({
            "name": v.name, "share": v.share, "messages": f.messages,
            "delivered": f.delivered, "unique_clickers": f.clickers,
            "ctr": f.delivered_clickers / f.delivered if f.delivered else None,
            "ctr_interval": _interval(stats.wilson(arm.successes, arm.trials)),
            "probability_best": probs[i],
            "versus_control": None if cmp is None else {
                "difference": cmp.difference, "interval": _interval(cmp.interval),
                "relative": cmp.relative, "p_value": cmp.p_value,
            },
        })  # fmt: skip
    return {
        "campaign": campaign.slug,
        "control": spec.variants[0].name,
        "seed": spec.seed,
        "confidence": stats.CONFIDENCE,
        "variants": out,
        "sample_ratio": None if ratio is None else {
            "p_value": ratio.p_value, "mismatch": ratio.mismatch,
        },
        "conversions": None,
    }  # fmt: skip
