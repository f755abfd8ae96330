"""The arithmetic of campaign reports (no I/O: storage supplies the counts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def ratio(numerator: int, denominator: int) -> float | None:
    """Return numerator / denominator, or None when the denominator is zero (not 0.0: unknown)."""
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Clicks on one link position of a campaign."""

    index: int
    url: str
    role: str
    total_clicks: int
    unique_clicks: int
    requests: int
    ctr: float | None
    raw_total_clicks: int = 0
    raw_unique_clicks: int = 0
    preview_fetches: int = 0


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """What a campaign reached: delivery, clicks and CTR, overall and per link.

    * `sent` counts messages handed to a provider (any status from `sent` on).
    * `total_clicks` counts GET requests on the campaign's tokens judged human (or suspect,
      or not yet classified); `raw_total_clicks` counts every GET. `requests` also counts HEAD
      and other probes, which are recorded but never clicks.
    * `unique_clicks` counts distinct recipients with at least one counted click.
    * `ctr` = unique_clicks / delivered; None when nothing is delivered yet.
    * `preview_fetches` counts link-preview fetches: a sign the message was displayed.
    * `by_verdict` / `by_reason`: every request per bot verdict and per reason code.
    """

    campaign: str
    name: str
    messages: int
    queued: int
    sent: int
    delivered: int
    failed: int
    undelivered: int
    total_clicks: int
    unique_clicks: int
    requests: int
    ctr: float | None
    repeat_click_rate: float | None
    links: list[LinkStats] = field(default_factory=list)
    raw_total_clicks: int = 0
    raw_unique_clicks: int = 0
    raw_ctr: float | None = None
    preview_fetches: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return asdict(self)
