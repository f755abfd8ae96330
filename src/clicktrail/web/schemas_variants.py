"""Wire shapes of a campaign's A/B variants and their report (`web/api_variants.py`;
docs/experiments.md)."""

from __future__ import annotations

from pydantic import Field

from clicktrail.web.schemas import _Response
from clicktrail.web.schemas_lift import IntervalOut


class VariantOut(_Response):
    """One variant as defined, with what its template costs as written."""

    name: str
    share: int = Field(description="Its weight in the split (70 and 30: 70 %).")
    template: str
    encoding: str = Field(description="The template's encoding as written (GSM-7 or UCS-2).")
    segments: int = Field(description="The template's segments as written (links not wrapped).")
    units: int


class VariantsOut(_Response):
    """A campaign's variants, the first the control, and the seed of the draw."""

    campaign: str
    seed: int = Field(description="The seed of the assignment: the same seed and audience "
                      "give the same variant to each recipient.")  # fmt: skip
    variants: list[VariantOut]


class ComparisonOut(_Response):
    """A variant against the control: CTR difference (this − control), its Newcombe interval,
    the relative lift and the score test's p-value of equal rates."""

    difference: float
    interval: IntervalOut
    relative: float | None = Field(description="this / control − 1 (None: control at 0).")
    p_value: float


class VariantRowOut(_Response):
    """One variant's figures."""

    name: str
    share: int
    messages: int = Field(description="Messages wrapped with this variant (test sends not).")
    delivered: int
    unique_clickers: int = Field(description="Recipients with a counted (human) click.")
    ctr: float | None = Field(description="Clickers among delivered messages / delivered.")
    ctr_interval: IntervalOut | None = Field(description="Wilson score interval of the CTR.")
    probability_best: float = Field(description="P(this variant's CTR is the highest), Beta "
                                    "posteriors, Monte Carlo seeded with the campaign's seed.")  # fmt: skip
    versus_control: ComparisonOut | None = Field(description="None for the control itself.")


class RatioOut(_Response):
    """The sample-ratio check of messages per variant against the shares (chi-square)."""

    p_value: float
    mismatch: bool = Field(description="p < 0.001: the split is broken, do not trust the test.")


class VariantReportOut(_Response):
    """The report per variant of a campaign with variants."""

    campaign: str
    control: str
    seed: int
    confidence: float
    variants: list[VariantRowOut]
    sample_ratio: RatioOut | None = Field(description="None before any message.")
    conversions: None = Field(description="Conversions per variant: not reported yet.")
