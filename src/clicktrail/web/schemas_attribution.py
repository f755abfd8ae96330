"""Wire shapes of attribution (web/api_attribution.py, docs/attribution.md): settings in and
out, and the conversions report of a campaign."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clicktrail.web.schemas import Text, _Request, _Response
from clicktrail.web.schemas_multitouch import CampaignMultiTouchOut

WINDOW_TEXT = (
    "A window: a preset (`1h`, `24h`, `7d`) or a whole number with `s`, `m`, `h` or `d` "
    "(at most `90d`); `inherit` clears the stored value."
)


class AttributionSettingsIn(_Request):
    """What to change; a field left out stays as stored, ``inherit`` clears it (a campaign
    then follows its workspace, a workspace the defaults)."""

    model: Annotated[
        Text | None,
        Field(description="`last_click`, `first_click`, `last_touch` or `inherit`.",
              examples=["last_click"], max_length=32),
    ] = None  # fmt: skip
    click_window: Annotated[
        Text | None, Field(description=WINDOW_TEXT, examples=["5d"], max_length=32)
    ] = None
    delivery_window: Annotated[
        Text | None, Field(description=WINDOW_TEXT, examples=["12h"], max_length=32)
    ] = None


class SettingsSources(_Response):
    """Where each setting in force comes from."""

    model: Literal["default", "workspace", "campaign", "request"]
    click_window: Literal["default", "workspace", "campaign"]
    delivery_window: Literal["default", "workspace", "campaign"]


class StoredSettings(_Response):
    """The values stored at this level (null: inherited)."""

    model: str | None
    click_window: str | None
    delivery_window: str | None


class AttributionSettingsOut(_Response):
    """Attribution settings in force, what is stored at this level, and whether the
    workspace's history is being re-attributed (`reattribution_pending`)."""

    model: str
    click_window: str
    delivery_window: str
    click_window_seconds: int
    delivery_window_seconds: int
    source: SettingsSources
    stored: StoredSettings
    revision: int
    attributed_revision: int
    reattribution_pending: bool


class AppliedSettings(_Response):
    """The settings a report used."""

    model: str
    click_window: str
    delivery_window: str
    click_window_seconds: int
    delivery_window_seconds: int
    source: SettingsSources


class RevenueOut(_Response):
    """Credited value in one currency; `rpm` per delivered message, `aov` per conversion."""

    currency: str
    revenue: float
    rpm: float | None
    aov: float | None


class DelaysOut(_Response):
    """Seconds from the credited click to the conversion."""

    count: int
    median_s: float | None
    p25_s: float | None
    p75_s: float | None
    p90_s: float | None


class _Figures(_Response):
    conversions: float
    click_conversions: float
    view_conversions: float
    converters: int
    click_converters: int
    conversion_rate: float | None = Field(description="Conversions per delivered message.")
    ctcr: float | None = Field(
        description="Click-to-conversion rate: contacts with click-credited conversions per "
        "unique counted clicker."
    )
    revenue: list[RevenueOut]
    time_to_convert: DelaysOut


class LinkConversionsOut(_Figures):
    """One link's conversions (`link`: its number from 1)."""

    link: int
    url: str
    role: str
    unique_clicks: int


class ConversionReportOut(_Figures):
    """A campaign's conversions under the settings it states (docs/attribution.md)."""

    campaign: str
    name: str
    settings: AppliedSettings
    delivered: int
    unique_clicks: int
    links: list[LinkConversionsOut]
    reattribution_pending: bool
    unsettled: int = Field(description="Credits waiting for final bot verdicts.")
    variants: None = Field(description="Per-variant figures: campaigns have no variants yet.")
    multi_touch: CampaignMultiTouchOut | None = Field(
        default=None, description="Only with `?multi_touch=true` (absent otherwise): the "
        "campaign's SMS touches' multi-touch credit under every model (docs/attribution.md, "
        "\"Multi-touch\"), computed when read over the workspace's conversions."
    )  # fmt: skip
