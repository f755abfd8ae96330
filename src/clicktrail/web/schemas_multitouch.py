"""Wire shapes of multi-touch attribution (docs/attribution.md, "Multi-touch"): the credit per
channel and campaign under every model (``GET /v1/attribution/channels``) and a campaign's
share of it in its conversions report (``multi_touch``)."""

from __future__ import annotations

from pydantic import Field

from clicktrail.web.schemas import Time, _Response


class ModelCredit(_Response):
    """Credit under each model (conversions, fractional)."""

    linear: float
    time_decay: float
    position_based: float
    last_click: float


class ModelRevenue(ModelCredit):
    """Credited revenue in one currency under each model (value × credit, summed)."""

    currency: str


class MultiTouchSettingsOut(_Response):
    """What the answer used: the workspace's windows (campaigns with their own windows use
    those for their SMS touches), the touchpoints' window (the workspace's click window) and
    the time-decay half-life."""

    half_life: str = Field(examples=["7d"])
    half_life_seconds: int
    click_window: str
    delivery_window: str
    touchpoint_window: str
    campaigns_with_own_windows: int


class ShareOut(_Response):
    """What a channel or campaign got: its touches in paths, conversions whose path holds one
    of them, credit and credited revenue under each model."""

    touches: int
    conversions: int
    credit: ModelCredit
    revenue: list[ModelRevenue]


class ChannelShareOut(ShareOut):
    """One channel (`sms`, or a touchpoint channel)."""

    channel: str


class CampaignShareOut(ShareOut):
    """One campaign of a channel: an SMS campaign's slug, another channel's label (null:
    touches without one)."""

    channel: str
    campaign: str | None


class ChannelReportOut(_Response):
    """Multi-touch credit per channel and campaign, every model side by side."""

    settings: MultiTouchSettingsOut
    since: Time | None
    until: Time | None
    models: list[str]
    conversions: int = Field(description="Conversions that occurred in the range.")
    with_touches: int = Field(description="Those whose path holds at least one touch.")
    channels: list[ChannelShareOut]
    campaigns: list[CampaignShareOut]


class CampaignMultiTouchOut(ShareOut):
    """A campaign's SMS touches' share of the workspace's multi-touch credit."""

    settings: MultiTouchSettingsOut
