"""Wire shapes of the holdout's power calculator and lift report (`web/api_lift.py`;
docs/attribution.md, "Holdout and lift")."""

from __future__ import annotations

from pydantic import Field

from clicktrail.web.schemas import _Response


class HoldoutSizeOut(_Response):
    """The smallest holdout of an audience that detects a lift of `mde` over `baseline`."""

    audience: int
    baseline: float = Field(description="Conversion rate without the campaign.")
    mde: float = Field(description="Minimum detectable effect: an absolute lift of the rate.")
    alpha: float
    power: float
    effect_size: float = Field(description="Cohen's h between baseline + mde and baseline.")
    reachable: bool = Field(description="False when even half the audience held out is short.")
    holdout: int | None = Field(description="Contacts to hold out (None: not reachable).")
    treated: int | None
    share: float | None = Field(description="holdout / audience: the campaign's holdout share.")
    power_at_max: float = Field(description="The power of holding out half the audience.")


class IntervalOut(_Response):
    """A 95 % confidence interval."""

    low: float
    high: float


class StratumOut(_Response):
    """One stratum of the holdout's draw."""

    name: str
    eligible: int
    held_out: int


class HoldoutDrawOut(_Response):
    """The campaign's holdout as drawn when its send started."""

    share: float
    seed: int
    stratify: str | None
    eligible: int = Field(description="Contacts the send could reach when it started.")
    held_out: int
    drawn_at: str | None
    strata: list[StratumOut]


class WindowOut(_Response):
    """The window conversions count in, for both arms: from the start of the send."""

    start: str | None
    end: str | None
    seconds: int
    source: str = Field(
        description="Where its length comes from: `default` (5 days) or the "
        "campaign's attribution window."
    )
    open: bool = Field(description="The window has not ended: the figures may still change.")


class ArmOut(_Response):
    """One arm: its contacts and how many of them converted in the window."""

    contacts: int
    converted: int


class RevenueOut(_Response):
    """Revenue per recipient in one currency, and the bootstrap interval of the lift."""

    currency: str
    treated_per_recipient: float
    holdout_per_recipient: float
    lift: float
    interval: IntervalOut | None
    method: str = Field(
        description="`bootstrap` (percentile, 2,000 resamples, seeded) up to 50,000 recipients "
        "in both arms; `normal` (the normal interval of the difference of means) above."
    )


class LiftOut(_Response):
    """A campaign's lift against its holdout (docs/attribution.md, "Holdout and lift")."""

    campaign: str
    slug: str
    holdout: HoldoutDrawOut
    window: WindowOut
    event: str | None = Field(description="The event counted (null: any conversion).")
    treated: ArmOut = Field(description="Contacts whose message was delivered.")
    holdout_arm: ArmOut = Field(description="The held-out contacts.")
    treated_rate: float | None
    holdout_rate: float | None
    absolute_lift: float | None = Field(description="treated_rate − holdout_rate.")
    absolute_interval: IntervalOut | None = Field(description="Newcomb's hybrid score interval.")
    relative_lift: float | None = Field(description="treated_rate / holdout_rate − 1.")
    relative_interval: IntervalOut | None = Field(description="Katz's log interval, minus one.")
    p_value: float | None = Field(description="Two-sided score test of equal rates.")
    revenue: list[RevenueOut]
    too_small: str | None = Field(
        description="Why the sample is too small to trust (null: it is not)."
    )
    detectable_lift: float | None = Field(
        description="The smallest absolute lift these arms detect with 80 % power at α 0.05."
    )
    confidence: float
