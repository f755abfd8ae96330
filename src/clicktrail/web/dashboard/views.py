"""What the dashboard templates show: report figures arranged for pages, and display formats.

Every number comes from `services.reports` (the same functions behind the API and the CLI);
this module only picks, orders and labels them, and lays out the charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clicktrail.domain import multitouch as mt
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.report import (
    COUNTED_CLICKS,
    CampaignComparison,
    FullReport,
    LinkStats,
    Reach,
    RecipientsPage,
    Share,
    TimingBucket,
)
from clicktrail.services import attribution, multitouch, reports
from clicktrail.services.attribution import AttributionStore, ConversionReport
from clicktrail.services.bots import ClickStore
from clicktrail.services.campaigns import CampaignStore, get_campaign
from clicktrail.services.clock import now_us
from clicktrail.services.incrementality import LiftReport
from clicktrail.services.multitouch import MultiTouchStore
from clicktrail.services.reports import ReportSource
from clicktrail.services.segments import SizedSegment
from clicktrail.web.dashboard import charts

PER_PAGE = (25, 50, 100)
MAX_TRAIL = 40  # cursors kept for "previous" links; older pages are reached from the first

# Verdicts in the order people read them, with their chart tones.
VERDICT_TONES = {
    "human": "good",
    "suspect": "warn",
    "unclassified": "muted",
    "preview": "info",
    "scanner": "bad",
    "automation": "bad2",
    "probe": "muted",
}


# -- display formats (Jinja filters) -------------------------------------------------------------


def num(value: int | float | None) -> str:
    """Return a count with thousands separators; "—" for unknown."""
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def pct(value: float | None, digits: int = 1) -> str:
    """Return a ratio as a percentage ("12.5%"); "—" when unknown (e.g. nothing delivered)."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def times(value: float | None) -> str:
    """Return a multiplier ("1.48×"); "—" when unknown."""
    return "—" if value is None else f"{value:.2f}×"


def when(us: int | None) -> str:
    """Return a UTC time to the second ("2026-11-22 10:00:05 UTC"); "—" for none."""
    if us is None:
        return "—"
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """Return a delay for people ("45 s", "3 min 20 s", "2 h 05 min", "3 d 4 h"); "—" for none."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def int_param(value: str | None, default: int) -> int:
    """Return a positive integer query parameter, or `default` when absent or malformed."""
    try:
        n = int(value) if value else default
    except ValueError:
        return default
    return n if n > 0 else default


# -- campaigns list --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One campaign in the list: its state and headline figures."""

    ref: str
    name: str
    slug: str
    status: str
    sent_us: int | None
    delivered: int
    total_clicks: int
    unique_clicks: int
    ctr: float | None
    median_first_click: str
    ctr_width: float  # percent of the best CTR in the list, for its meter


@dataclass(frozen=True, slots=True)
class CampaignList:
    """The campaigns page: rows and the date range shown."""

    rows: list[CampaignRow]
    since: str
    until: str
    definition: str = COUNTED_CLICKS


def _day_us(text: str, field: str) -> int | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        from clicktrail.domain.errors import InvalidInput

        raise InvalidInput(f"{field} must be a date like 2026-11-22", field=field) from None
    return int(day.timestamp()) * 1_000_000


def campaign_list(
    queries: ReportSource, workspace: Workspace, *, since: str = "", until: str = ""
) -> CampaignList:
    """Return the campaigns of `workspace` with engagement figures, newest first; with `since`
    / `until` (YYYY-MM-DD, UTC, `until` inclusive) only campaigns sent in that range.

    Raises `InvalidInput` for a malformed date or an empty range.
    """
    since_us = _day_us(since, "since")
    until_us = _day_us(until, "until")
    if until_us is not None:
        until_us += 86_400_000_000  # the whole last day
    rows_cmp: list[CampaignComparison] = reports.compare_campaigns(
        queries, workspace, since_us=since_us, until_us=until_us
    )
    status = {c.public_id: c.status for c in queries.list_campaigns(workspace.id)}
    best = max((c.ctr or 0.0 for c in rows_cmp), default=0.0)
    rows = [
        CampaignRow(
            c.campaign, c.name, c.slug, status.get(c.campaign, ""), c.sent_us, c.delivered,
            c.total_clicks, c.unique_clicks, c.ctr, duration(c.median_first_click_s),
            100 * (c.ctr or 0.0) / best if best else 0.0,
        )
        for c in rows_cmp
    ]  # fmt: skip
    return CampaignList(rows, since, until)


# -- campaign report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One link of the report with the bar of its unique clickers."""

    stats: LinkStats
    bar: float  # percent of the most-clicked link's unique clickers


@dataclass(frozen=True, slots=True)
class ReportPage:
    """The campaign page: the full report plus its charts."""

    campaign: Campaign
    report: FullReport
    delivery: list[charts.Segment]
    awaiting_receipt: int
    minutes: charts.ColumnChart
    hours: charts.ColumnChart | None
    median_first_click: str
    engagement_links: list[LinkRow]
    optout_links: list[LinkRow]
    verdicts: list[charts.Segment]
    reasons: list[charts.Bar]
    devices: list[charts.Bar]
    oses: list[charts.Bar]
    browsers: list[charts.Bar]
    conversions: ConversionReport | None = None  # None: no attribution store (tests of views)
    definition: str = COUNTED_CLICKS  # what the headline counts, as every interface says it


def _link_rows(links: list[LinkStats]) -> list[LinkRow]:
    top = max((lk.unique_clicks for lk in links), default=0)
    return [LinkRow(lk, 100 * lk.unique_clicks / top if top else 0.0) for lk in links]


def _share_bars(
    items: list[Share], tone: str, limit: int = 8, total: int | None = None
) -> list[charts.Bar]:
    """Bars of the first `limit` shares and "other"; `total` is the shares' denominator
    (default: the sum of the counts)."""
    shown = items[:limit]
    rest = sum(s.count for s in items[limit:])
    total = sum(s.count for s in items) if total is None else total
    rows = [(s.name or "unknown", s.count, tone) for s in shown]
    notes = [pct(s.share) for s in shown]
    if rest:
        rows.append(("other", rest, "muted"))
        notes.append(pct(rest / total if total else None))
    return charts.bars(rows, notes)


def _hour_label(b: TimingBucket) -> str:
    hours = b.start_s // 3600
    return f"{hours} h+" if b.end_s is None else f"{hours}–{hours + 1} h"


def report_page(
    queries: ReportSource,
    workspace: Workspace,
    ref: str,
    credits: AttributionStore | None = None,
) -> ReportPage:
    """Return the campaign page of campaign `ref`, with its conversions when `credits` is
    given. Raises `NotFound` for an unknown campaign."""
    report = reports.full_report(queries, workspace, ref, now_us=now_us())
    campaign = queries.find_campaign(workspace.id, ref)
    assert campaign is not None  # full_report raised NotFound otherwise
    s = report.summary
    conversions = (
        None
        if credits is None
        else attribution.conversion_report(
            credits, Reach.of_report(s, [lk.id for lk in campaign.links]), workspace, campaign
        )
    )
    awaiting = max(0, s.sent - s.delivered - s.failed - s.undelivered)
    delivery = charts.stacked(
        [
            ("Delivered", s.delivered, "good"),
            ("Awaiting receipt", awaiting, "info"),
            ("Queued", s.queued, "muted"),
            ("Failed", s.failed, "bad"),
            ("Undelivered", s.undelivered, "warn"),
        ]
    )
    first_hour = [b for b in report.timing.buckets if b.start_s < 3600]
    later = [b for b in report.timing.buckets if b.start_s >= 3600]
    minutes = charts.column_chart(
        [(f"{b.start_s // 60}–{b.start_s // 60 + 1} min", b.clicks) for b in first_hour],
        ticks=[f"{b.start_s // 60} min" for b in first_hour],
        x_labels=12,
    )
    hours = (
        charts.column_chart(
            [(_hour_label(b), b.clicks) for b in later],
            ticks=[f"{b.start_s // 3600} h" for b in later],
            x_labels=12,
        )
        if any(b.clicks for b in later)
        else None
    )
    by_verdict = {v.name: v.count for v in report.bots.by_verdict}
    verdicts = charts.stacked(
        [
            (name.capitalize(), by_verdict.get(name, 0), tone)
            for name, tone in VERDICT_TONES.items()
            if name in by_verdict
        ]
        + [
            (name.capitalize(), n, "muted")
            for name, n in by_verdict.items()
            if name not in VERDICT_TONES
        ]
    )
    return ReportPage(
        campaign=campaign,
        report=report,
        delivery=delivery,
        awaiting_receipt=awaiting,
        minutes=minutes,
        hours=hours,
        median_first_click=duration(report.timing.median_first_click_s),
        engagement_links=_link_rows([lk for lk in s.links if lk.role != "optout"]),
        optout_links=_link_rows([lk for lk in s.links if lk.role == "optout"]),
        verdicts=verdicts,
        reasons=_share_bars(report.bots.by_reason, "bad", limit=10, total=report.bots.requests),
        devices=_share_bars(report.devices, "accent"),
        oses=_share_bars(report.oses, "accent"),
        browsers=_share_bars(report.browsers, "accent"),
        conversions=conversions,
    )


# -- multi-touch credit ---------------------------------------------------------------------------

MODEL_LABELS = {"linear": "Linear", "time_decay": "Time decay",
                "position_based": "Position-based", "last_click": "Last click"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CreditRow:
    """One row of the multi-touch card: a channel, or the campaign's own SMS touches
    (`campaign`); its touches in paths, the conversions whose path holds one, and its credit
    under each model (`mt.MODELS` order)."""

    label: str
    key: str
    touches: int
    conversions: int
    credit: list[float]
    campaign: bool = False


@dataclass(frozen=True, slots=True)
class MultiTouchView:
    """The multi-touch card: the workspace's credit per channel, side by side under every
    model, and the campaign's share, over every conversion of the workspace, with the
    settings used."""

    models: list[tuple[str, str]]
    rows: list[CreditRow]
    conversions: int
    with_touches: int
    settings: dict[str, object]


def multitouch_view(
    store: MultiTouchStore, workspace: Workspace, campaign: Campaign, half_life: str | None
) -> MultiTouchView:
    """Return the multi-touch card of `campaign` (`services.multitouch.channel_report`, the
    same numbers as ``GET /v1/attribution/channels``). Raises `InvalidInput` for a bad
    half-life."""
    report = multitouch.channel_report(store, workspace, multitouch.half_life_us(half_life))
    own = report.campaigns.get((mt.SMS, campaign.slug), multitouch.Share())
    rows = [CreditRow(f"This campaign ({campaign.slug}, SMS)", f"campaign:{campaign.slug}",
                      own.touches, own.conversions, own.credit, campaign=True)]  # fmt: skip
    for channel, share in sorted(report.channels.items(), key=lambda kv: (-kv[1].credit[0], kv[0])):
        rows.append(CreditRow(channel, channel, share.touches, share.conversions, share.credit))
    return MultiTouchView(
        [(m, MODEL_LABELS[m]) for m in mt.MODELS], rows, report.conversions,
        report.with_touches, report.lookback.as_dict(),
    )  # fmt: skip


# -- lift against the holdout ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntervalBar:
    """An estimate and its interval on a scale that includes zero, in percent of the width."""

    low: float
    high: float
    point: float
    zero: float


def interval_bar(point: float, low: float, high: float) -> IntervalBar:
    """Return where `point`, its interval [`low`, `high`] and zero sit on a common scale."""
    lo, hi = min(low, 0.0, point), max(high, 0.0, point)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad

    def at(x: float) -> float:
        return round(100 * (x - lo) / (hi - lo), 2)

    return IntervalBar(at(low), at(high), at(point), at(0.0))


@dataclass(frozen=True, slots=True)
class LiftView:
    """The lift card: the report and the bar of its absolute lift's interval."""

    report: LiftReport
    bar: IntervalBar | None


def lift_view(report: LiftReport | None) -> LiftView | None:
    """Return the campaign page's lift card (None: the campaign has no holdout or was not sent)."""
    if report is None:
        return None
    s = report.stats
    ci = s.absolute_interval
    bar = (
        interval_bar(s.absolute_lift, ci.low, ci.high)
        if s.absolute_lift is not None and ci is not None
        else None
    )
    return LiftView(report, bar)


# -- recipients ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientsView:
    """One page of the recipients table with what its links need."""

    campaign: Campaign
    page: RecipientsPage
    search: str
    per_page: int
    first_index: int  # 1-based position of the first row
    next_query: str | None
    prev_query: str | None
    per_page_choices: tuple[int, ...] = PER_PAGE


def recipients_view(
    queries: ReportSource,
    workspace: Workspace,
    ref: str,
    *,
    search: str,
    after: str,
    trail: str,
    per_page: int,
    start: int = 1,
) -> RecipientsView:
    """Return one page of the recipients who clicked campaign `ref`.

    Paging is by cursor (`after`); `trail` holds the cursors of the pages before (the last
    `MAX_TRAIL`), so the page can link back; `start` is the position of its first row.
    Raises `NotFound` for an unknown campaign, `InvalidInput` for a bad cursor.
    """
    from urllib.parse import urlencode

    per_page = per_page if per_page in PER_PAGE else PER_PAGE[0]
    search = search.strip()[:100]
    page = reports.recipients_page(
        queries, workspace, ref, search=search or None, cursor=after or None, limit=per_page
    )
    campaign = queries.find_campaign(workspace.id, ref)
    assert campaign is not None
    back = [c for c in trail.split(",") if c][-MAX_TRAIL:] if after else []

    first = start if after else 1

    def query(cursor: str | None, stack: list[str], at: int) -> str:
        params = {"q": search, "per": str(per_page)}
        if cursor:
            params.update(after=cursor, trail=",".join(stack), start=str(at))
        return urlencode({k: v for k, v in params.items() if v})

    next_query = (
        query(page.next_cursor, [*back, after] if after else [], first + len(page.items))
        if page.next_cursor
        else None
    )
    prev_query = (
        query(back[-1] if back else None, back[:-1], max(1, first - per_page)) if after else None
    )
    return RecipientsView(campaign, page, search, per_page, first, next_query, prev_query)


# -- raw requests (the evidence behind "humans and bots") -----------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One stored request on a campaign's tokens, as recorded, with its verdict."""

    at_us: int
    method: str
    verdict: str
    reasons: tuple[str, ...]
    ip: str | None
    user_agent: str | None
    link: int | None  # the link's number, from 1


@dataclass(frozen=True, slots=True)
class RequestsView:
    """A page of the raw request log of one campaign, in arrival order."""

    campaign: Campaign
    rows: list[RequestRow]
    per_page: int
    first_index: int
    next_query: str | None
    prev_query: str | None


def requests_view(
    campaign_store: CampaignStore,
    clicks: ClickStore,
    workspace: Workspace,
    ref: str,
    *,
    after: int,
    trail: str,
    per_page: int,
    start: int = 1,
) -> RequestsView:
    """Return the requests (`clicks`) of campaign `ref` (`campaign_store`) after row `after` (0: from the first), verdicts
    and reasons as stored; paging as in `recipients_view`. Raises `NotFound` for an unknown
    campaign."""
    from urllib.parse import urlencode

    per_page = per_page if per_page in PER_PAGE else PER_PAGE[0]
    campaign = get_campaign(campaign_store, workspace, ref)
    page = clicks.requests_page(after, per_page + 1, campaign.id, None)
    more = len(page) > per_page
    page = page[:per_page]
    number_of = {lk.id: lk.index + 1 for lk in campaign.links}
    rows = [
        RequestRow(
            r.at_us, r.method, r.verdict.verdict if r.verdict else "unclassified",
            r.verdict.reasons if r.verdict else (), r.ip, r.user_agent, number_of.get(r.link_id),
        )
        for _, r in page
    ]  # fmt: skip
    back = (
        [int(c) for c in trail.split(",") if c.isdigit() and int(c)][-MAX_TRAIL:] if after else []
    )

    first = start if after else 1

    def query(cursor: int, stack: list[int], at: int) -> str:
        params = {"per": str(per_page)}
        if cursor:
            params.update(after=str(cursor), trail=",".join(map(str, stack)), start=str(at))
        return urlencode({k: v for k, v in params.items() if v})

    next_query = (
        query(page[-1][0], [*back, after] if after else [], first + len(rows)) if more else None
    )
    prev_query = (
        query(back[-1] if back else 0, back[:-1], max(1, first - per_page)) if after else None
    )
    return RequestsView(campaign, rows, per_page, first, next_query, prev_query)


@dataclass(frozen=True)
class SegmentRow:
    """A segment as the Segments page lists it: its conditions in words, its size now."""

    slug: str
    name: str
    kind: str  # "built-in", "filter" or "static list"
    conditions: list[str]
    size: int
    sendable: bool


def segment_row(x: SizedSegment) -> SegmentRow:
    """Return the row of a segment with its size."""
    seg = x.segment
    kind = "built-in" if seg.builtin else ("static list" if seg.kind == "static" else "filter")
    conditions = []
    for name, value in (seg.filter.as_dict() if seg.filter is not None else {}).items():
        if isinstance(value, dict):
            value = "; ".join(f"{k} = {' or '.join(v)}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        conditions.append(
            f"{name.replace('_', ' ')}: {str(value).lower() if isinstance(value, bool) else value}"
        )
    return SegmentRow(seg.slug, seg.name, kind, conditions, x.size, seg.sendable)
