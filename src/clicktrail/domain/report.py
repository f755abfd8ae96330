"""The arithmetic of campaign reports (no I/O: storage supplies the counts)."""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def ratio(numerator: int, denominator: int) -> float | None:
    """Return numerator / denominator, or None when the denominator is zero (not 0.0: unknown)."""
    return numerator / denominator if denominator else None


# What the headline counts, in one sentence: README.md, docs/bots.md, docs/reports.md and the
# help of `clicktrail report` say exactly this (tests/test_report_docs.py checks they do).
COUNTED_CLICKS = (
    "A counted click is a GET request on a campaign's link that is not an opt-out link whose "
    "bot verdict, provisional or final, is human or suspect or not given yet; unique clicks "
    "are the recipients with at least one counted click, and CTR is unique clicks divided by "
    "delivered messages."
)

# The verdicts behind that sentence: a request with one of these, or with no verdict yet,
# counts. "suspect" counts: losing a person's tap is worse than counting a doubtful one
# (docs/bots.md). Storage filters by it in SQL and in the click rollup; nothing else defines it.
COUNTED_VERDICTS = ("human", "suspect")


def is_counted(verdict: str | None, is_click: object) -> bool:
    """Return whether a request counts as a click (`COUNTED_CLICKS`): a GET (`is_click`) whose
    bot verdict is counted or not given yet."""
    return bool(is_click) and (verdict is None or verdict in COUNTED_VERDICTS)


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Clicks on one link of a campaign. `link` is its number, from 1, as in `--link-role`."""

    link: int
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
class ClickFigures:
    """Click figures over a set of links (see `COUNTED_CLICKS`): counted `total_clicks`,
    `unique_clicks` (distinct recipients), `ctr` = unique / delivered, `repeat_click_rate` =
    total / unique, and the same before bot filtering (`raw_*`: every GET)."""

    total_clicks: int
    unique_clicks: int
    ctr: float | None
    repeat_click_rate: float | None
    raw_total_clicks: int
    raw_unique_clicks: int
    raw_ctr: float | None


@dataclass(frozen=True, slots=True)
class OptOutStats:
    """Clicks on opt-out links, kept apart from engagement. `rate` = unique / delivered."""

    links: int
    total_clicks: int
    unique_clicks: int
    rate: float | None
    raw_total_clicks: int


@dataclass(frozen=True, slots=True)
class Provisional:
    """Whether a report's numbers are final.

    `requests` counts the campaign's requests whose bot verdict is still provisional (or not
    given yet): the settle-window pass may still change them. `counted_clicks` is how many of
    them the headline counts now. `settles_us` / `settles_at`: when the last of them is old
    enough to be finalized (its arrival plus `settle_seconds`); the server's finalize pass gives
    the final verdict within `bot_finalize_interval` seconds after. `final`: nothing pending.
    """

    final: bool
    requests: int
    counted_clicks: int
    settle_seconds: int
    settles_us: int | None
    settles_at: str | None

    @classmethod
    def of(cls, requests: int, counted: int, last_us: int | None, settle_us: int) -> Provisional:
        """Return the finality of `requests` provisional requests (`counted` of them counted
        clicks), the newest at `last_us`, under a settle window of `settle_us`."""
        settles = None if last_us is None or not requests else last_us + settle_us
        return cls(
            requests == 0, requests, counted, settle_us // 1_000_000, settles, iso_us(settles)
        )


@dataclass(frozen=True, slots=True)
class Reach:
    """The denominators of a campaign's conversions report: its `delivered` messages, its
    `unique_clicks` (distinct recipients with a counted engagement click: the click report's
    headline) and per link (by link row id) the distinct recipients with a counted click on
    it. The same figures as the click report's, read without the rest of it."""

    delivered: int
    unique_clicks: int
    links: dict[int, int]

    @classmethod
    def of_report(cls, report: CampaignReport, link_ids: Sequence[int]) -> Reach:
        """Return the reach a click `report` states; `link_ids`: the campaign's links' row
        ids, in the order of their numbers."""
        by_number = {lk.link: lk.unique_clicks for lk in report.links}
        return cls(report.delivered, report.unique_clicks,
                   {lid: by_number.get(i + 1, 0) for i, lid in enumerate(link_ids)})  # fmt: skip


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """What a campaign reached: delivery, clicks and CTR, overall and per link.

    * `sent` counts messages handed to a provider (any status from `sent` on).
    * The headline click figures (`total_clicks`, `unique_clicks`, `ctr`, `repeat_click_rate`
      and their `raw_*` twins) cover engagement links only: see `COUNTED_CLICKS`. `all_links`
      gives the same figures over every link, opt-out links included; `optout` the opt-out
      links alone.
    * `requests` counts every request (HEAD and other probes included, never clicks);
      `preview_fetches` link-preview fetches (a sign the message was displayed);
      `by_verdict` / `by_reason`: every request per bot verdict and per reason code.
    * `provisional`: how much may still change before the numbers are final.
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
    ctr: float | None
    repeat_click_rate: float | None
    raw_total_clicks: int
    raw_unique_clicks: int
    raw_ctr: float | None
    requests: int
    preview_fetches: int
    by_verdict: dict[str, int]
    by_reason: dict[str, int]
    all_links: ClickFigures
    optout: OptOutStats
    provisional: Provisional
    links: list[LinkStats] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return asdict(self)


# -- the full report (issue 6) ---------------------------------------------------------------

MINUTE_BUCKETS = 60  # per-minute buckets for the first hour after delivery
MAX_HOURLY_BUCKETS = 7 * 24  # then hourly up to a week; later clicks share one open bucket


def iso_us(us: int | None) -> str | None:
    """Return `us` (µs since the epoch, UTC) as ISO 8601 with a Z, or None."""
    if us is None:
        return None
    return (
        datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat(timespec="milliseconds")
    ).replace("+00:00", "Z")


def median(values: Sequence[float]) -> float | None:
    """Return the median of `values` (mean of the two middle ones for an even count), or None."""
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


@dataclass(frozen=True, slots=True)
class TimingBucket:
    """Counted engagement clicks whose time since delivery falls in [start_s, end_s).

    `first_clicks` counts only each recipient's first counted click. `end_s` None: open.
    """

    start_s: int
    end_s: int | None
    clicks: int
    first_clicks: int


@dataclass(frozen=True, slots=True)
class ClickTiming:
    """When counted engagement clicks came, measured from each message's delivery receipt.

    `buckets`: 60 per-minute buckets, then hourly ones up to the last click (at most a week,
    then one open bucket). `median_first_click_s`: median seconds from delivery to each
    recipient's first counted click. Clicks before the receipt, on messages whose receipt
    says they failed (`failed` or `undelivered`: no delivery time) and on messages without any
    receipt are counted apart (`before_delivery`, `failed_receipt`, `without_receipt`), never
    bucketed.
    """

    buckets: list[TimingBucket]
    median_first_click_s: float | None
    first_clicks: int
    before_delivery: int
    failed_receipt: int
    without_receipt: int


@dataclass(frozen=True, slots=True)
class Share:
    """One row of a breakdown: `count` and its share of the breakdown's total."""

    name: str
    count: int
    share: float | None


@dataclass(frozen=True, slots=True)
class CountryStats:
    """Recipients of one country (ISO 3166 code from the phone number; "ZZ" unknown)."""

    country: str
    recipients: int
    delivered: int
    unique_clicks: int
    ctr: float | None


@dataclass(frozen=True, slots=True)
class RecipientClicks:
    """One recipient who clicked: counted engagement clicks, first and last, device of last."""

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

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready mapping (times also as ISO 8601)."""
        d = asdict(self)
        d["first_click_at"] = iso_us(self.first_click_us)
        d["last_click_at"] = iso_us(self.last_click_us)
        return d


@dataclass(frozen=True, slots=True)
class RecipientsPage:
    """A page of recipients who clicked, in send order. `next_cursor` None: last page."""

    items: list[RecipientClicks]
    next_cursor: str | None
    total: int

    def as_dict(self) -> dict[str, Any]:
        """Return the page as a JSON-ready mapping."""
        return {
            "items": [r.as_dict() for r in self.items],
            "next_cursor": self.next_cursor,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class BotShare:
    """Every request on the campaign's links (every link; GETs and HEAD or other probes alike)
    and what bot filtering made of them. One denominator: every `share` here, per verdict and
    per reason code, is a share of `requests` (a request may carry several reasons).

    `raw_clicks` counts the GETs among them, `counted_clicks` those counted as clicks
    (`all_links.total_clicks`), `not_counted` = requests - counted_clicks.
    """

    requests: int
    raw_clicks: int
    counted_clicks: int
    not_counted: int
    share: float | None
    by_verdict: list[Share]
    by_reason: list[Share]


@dataclass(frozen=True, slots=True)
class FullReport:
    """Everything known about one campaign (see docs/reports.md).

    `summary` is the campaign report (headline over engagement links, `all_links` and
    `optout` beside it). Breakdowns by device, OS, browser cover counted engagement clicks;
    `countries` covers every recipient; `recipients` is the first page of `recipients_page`.
    """

    summary: CampaignReport
    timing: ClickTiming
    devices: list[Share]
    oses: list[Share]
    browsers: list[Share]
    countries: list[CountryStats]
    bots: BotShare
    recipients: RecipientsPage
    generated_us: int

    def as_dict(self) -> dict[str, Any]:
        """Return the campaign report's keys plus the full sections, JSON-ready."""
        d = self.summary.as_dict()
        d.update(
            timing=asdict(self.timing),
            devices=[asdict(s) for s in self.devices],
            oses=[asdict(s) for s in self.oses],
            browsers=[asdict(s) for s in self.browsers],
            countries=[asdict(c) for c in self.countries],
            bots=asdict(self.bots),
            recipients=self.recipients.as_dict(),
            generated_at=iso_us(self.generated_us),
        )
        return d


@dataclass(frozen=True, slots=True)
class CampaignComparison:
    """One campaign in the comparison view (engagement figures: opt-out links excluded)."""

    campaign: str
    slug: str
    name: str
    sent_us: int | None
    delivered: int
    total_clicks: int
    unique_clicks: int
    ctr: float | None
    median_first_click_s: float | None

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a JSON-ready mapping."""
        d = asdict(self)
        d["sent_at"] = iso_us(self.sent_us)
        return d


def shares(counts: dict[str, int], total: int | None = None) -> list[Share]:
    """Return `counts` as shares of `total` (default: their sum), largest first (ties by
    name)."""
    total = sum(counts.values()) if total is None else total
    return [
        Share(name, n, ratio(n, total))
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def bucket_key(delay_us: int) -> int:
    """Return the timing bucket of a delay ≥ 0 (µs): minute i → i (0-59), hour h → 59 + h."""
    if delay_us < 3_600_000_000:
        return delay_us // 60_000_000
    return 59 + delay_us // 3_600_000_000


def timing_buckets(
    clicks: dict[int, int], first_clicks: dict[int, int], *, max_hours: int = MAX_HOURLY_BUCKETS
) -> list[TimingBucket]:
    """Return the buckets of {bucket key: count} maps (keys from `bucket_key`): 60 one-minute
    buckets, then hourly ones up to the last occupied hour; hours from `max_hours` on share
    one open bucket."""
    hourly: dict[int, list[int]] = {}
    for which, counts in enumerate((clicks, first_clicks)):
        for key, n in counts.items():
            if key >= MINUTE_BUCKETS:
                hourly.setdefault(min(key - MINUTE_BUCKETS + 1, max_hours), [0, 0])[which] += n
    out = [
        TimingBucket(i * 60, (i + 1) * 60, clicks.get(i, 0), first_clicks.get(i, 0))
        for i in range(MINUTE_BUCKETS)
    ]
    for h in range(1, max(hourly, default=0) + 1):
        c, f = hourly.get(h, (0, 0))
        out.append(TimingBucket(h * 3600, None if h == max_hours else (h + 1) * 3600, c, f))
    return out


def encode_cursor(message_id: int) -> str:
    """Return the opaque cursor of the recipients list that resumes after `message_id`."""
    return base64.urlsafe_b64encode(f"r1:{message_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """Return the message id a cursor resumes after, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    tag, _, value = raw.partition(":")
    return int(value) if tag == "r1" and value.isdigit() and len(value) < 19 else None


# -- the per-recipient click rollup: what one message's requests add up to ---------------------

# Flags of a recipient's rollup row (`message_clicks.flags`): a counted click, any GET, a
# counted engagement click, any engagement GET, a counted opt-out click.
F_COUNTED, F_RAW, F_ENG, F_RAW_ENG, F_OPT = 1, 2, 4, 8, 16


def delay_bucket(at_us: int, delivered_us: int | None) -> int:
    """Return the timing bucket of a click at `at_us`: -2 without a delivery time, -1 before
    delivery, else `bucket_key` of its delay since delivery."""
    if delivered_us is None:
        return -2
    d = at_us - delivered_us
    return -1 if d < 0 else bucket_key(d)


@dataclass(slots=True)
class MessageClicks:
    """One recipient's requests summed up for the rollup (see `COUNTED_CLICKS`).

    `flags`: the F_* flags; `clicks`: counted engagement clicks, the first and last at
    `first_us` / `last_us`; `links`: link id → 1 when it has a counted click, 0 when only
    uncounted GETs; `buckets`: timing bucket (`delay_bucket`) → counted engagement clicks.
    """

    flags: int
    clicks: int
    first_us: int | None
    last_us: int | None
    links: dict[int, int]
    buckets: Counter[int]


def message_clicks(
    requests: Iterable[tuple[int, str | None, Any, int]],
    optout_links: Collection[int],
    delivered_us: int | None,
) -> MessageClicks | None:
    """Return what one message's `requests` (link id, verdict, is a GET, at_us) add up to, its
    opt-out links apart from engagement; None when none of them is a GET."""
    flags, n, first, last = 0, 0, None, None
    links: dict[int, int] = {}
    buckets: Counter[int] = Counter()
    for lid, verdict, is_click, at_us in requests:
        if not is_click:
            continue
        counted = is_counted(verdict, is_click)
        eng = lid not in optout_links
        links[lid] = links.get(lid, 0) | counted
        flags |= F_RAW | (F_RAW_ENG if eng else 0)
        if counted:
            flags |= F_COUNTED | (F_ENG if eng else F_OPT)
            if eng:
                n += 1
                first = at_us if first is None else min(first, at_us)
                last = at_us if last is None else max(last, at_us)
                buckets[delay_bucket(at_us, delivered_us)] += 1
    if not flags:
        return None
    return MessageClicks(flags, n, first, last, links, buckets)
