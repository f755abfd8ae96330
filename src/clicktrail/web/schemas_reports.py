"""Wire shapes of the reports (docs/reports.md) as pydantic models: the campaign report, the
full report, the recipients who clicked and the comparison of campaigns.

The report routes validate what `domain.report` computes (its `as_dict` forms) against these
models before answering, and the OpenAPI document takes its schemas from them, so a report
that gains, loses or renames a key fails the route's tests instead of changing the API
silently. Definitions of every figure: `domain/report.py` and docs/reports.md.
"""

from __future__ import annotations

from pydantic import Field

from clicktrail.web.schemas import _Response

Rate = float | None  # null: the denominator is zero (unknown, not 0)
When = str  # ISO 8601 UTC with milliseconds and a Z


class LinkStatsOut(_Response):
    """Clicks on one link of a campaign."""

    link: int = Field(description="The link's number in the template, from 1 (as in link_role).")
    url: str
    role: str
    total_clicks: int
    unique_clicks: int
    requests: int
    ctr: Rate
    raw_total_clicks: int
    raw_unique_clicks: int
    preview_fetches: int


class ClickFiguresOut(_Response):
    """Click figures over a set of links: counted clicks, distinct recipients, CTR (unique /
    delivered), repeat rate (total / unique), and the same before bot filtering (`raw_*`)."""

    total_clicks: int
    unique_clicks: int
    ctr: Rate
    repeat_click_rate: Rate
    raw_total_clicks: int
    raw_unique_clicks: int
    raw_ctr: Rate


class OptOutStatsOut(_Response):
    """Clicks on opt-out links, kept apart from engagement; `rate` = unique / delivered."""

    links: int
    total_clicks: int
    unique_clicks: int
    rate: Rate
    raw_total_clicks: int


class ProvisionalOut(_Response):
    """Whether the report's numbers are final: requests whose bot verdict may still change,
    how many of them count now, and when the last of them settles."""

    final: bool
    requests: int
    counted_clicks: int
    settle_seconds: int
    settles_us: int | None = Field(description="µs since the epoch; null when final.")
    settles_at: When | None


class CampaignReportOut(_Response):
    """What a campaign reached: delivery, clicks and CTR, overall and per link. The headline
    click figures cover engagement links only (`all_links`: every link; `optout`: opt-out
    links); `requests` counts every request, probes included."""

    campaign: str
    name: str
    messages: int
    queued: int
    sent: int = Field(description="Handed to a provider (any status from `sent` on).")
    delivered: int
    failed: int
    undelivered: int
    total_clicks: int
    unique_clicks: int
    ctr: Rate
    repeat_click_rate: Rate
    raw_total_clicks: int
    raw_unique_clicks: int
    raw_ctr: Rate
    requests: int
    preview_fetches: int = Field(description="Link-preview fetches (the message was shown).")
    by_verdict: dict[str, int] = Field(description="Every request per bot verdict.")
    by_reason: dict[str, int] = Field(description="Every request per reason code.")
    all_links: ClickFiguresOut
    optout: OptOutStatsOut
    provisional: ProvisionalOut
    links: list[LinkStatsOut]


class TimingBucketOut(_Response):
    """Counted engagement clicks whose time since delivery is in [start_s, end_s)."""

    start_s: int
    end_s: int | None = Field(description="null: the open last bucket.")
    clicks: int
    first_clicks: int = Field(description="Only each recipient's first counted click.")


class ClickTimingOut(_Response):
    """When counted engagement clicks came, from each message's delivery receipt: 60 minute
    buckets, then hourly ones. Clicks before the receipt, on failed messages and on messages
    without a receipt are counted apart, never bucketed."""

    buckets: list[TimingBucketOut]
    median_first_click_s: float | None
    first_clicks: int
    before_delivery: int
    failed_receipt: int
    without_receipt: int


class ShareOut(_Response):
    """One row of a breakdown: `count` and its share of the breakdown's total."""

    name: str
    count: int
    share: Rate


class CountryStatsOut(_Response):
    """Recipients of one country (ISO 3166 code from the phone number; `ZZ`: unknown)."""

    country: str
    recipients: int
    delivered: int
    unique_clicks: int
    ctr: Rate


class BotShareOut(_Response):
    """Every request on the campaign's links and what bot filtering made of them; every
    `share` is a share of `requests`."""

    requests: int
    raw_clicks: int = Field(description="The GETs among the requests.")
    counted_clicks: int
    not_counted: int
    share: Rate
    by_verdict: list[ShareOut]
    by_reason: list[ShareOut]


class RecipientClicksOut(_Response):
    """One recipient who clicked: counted engagement clicks, first and last, device of the
    last."""

    message: str
    phone: str
    external_id: str | None
    country: str
    clicks: int
    first_click_us: int
    last_click_us: int
    device: str | None
    os: str | None
    browser: str | None
    first_click_at: When
    last_click_at: When


class RecipientsPageOut(_Response):
    """A page of recipients who clicked, in send order."""

    items: list[RecipientClicksOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")
    total: int = Field(description="Recipients who clicked, over every page.")


class FullReportOut(CampaignReportOut):
    """The campaign report's keys plus the full sections: timing, devices, systems, browsers,
    countries, bots and the first page of recipients."""

    timing: ClickTimingOut
    devices: list[ShareOut]
    oses: list[ShareOut]
    browsers: list[ShareOut]
    countries: list[CountryStatsOut]
    bots: BotShareOut
    recipients: RecipientsPageOut
    generated_at: When


class ComparisonOut(_Response):
    """One campaign in the comparison (engagement figures: opt-out links excluded)."""

    campaign: str
    slug: str
    name: str
    sent_us: int | None
    delivered: int
    total_clicks: int
    unique_clicks: int
    ctr: Rate
    median_first_click_s: float | None
    sent_at: When | None


class ComparisonList(_Response):
    """The workspace's campaigns, compared."""

    items: list[ComparisonOut]
