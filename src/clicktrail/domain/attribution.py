"""Attribution: which touch of a contact gets the credit for a conversion (no I/O).

Models (`MODELS`, docs/attribution.md):

* ``last_click`` (the default): the contact's latest attributable click within its campaign's
  click window before the conversion.
* ``first_click``: the earliest such click.
* ``last_touch``: view-through. The latest attributable click, as last click; when there is
  none, the latest *view* — a delivered message the contact did not click (no attributable
  click on it at or before the conversion) whose delivery lies within its campaign's delivery
  window. **A click beats a view**: a view is credited only when no click is eligible, even if
  it was delivered after the click (a tap is the stronger evidence, as in the view-through
  rules of ad platforms; a later message that was merely delivered does not take the credit).

A click is attributable when it is a GET on an engagement link (not an opt-out link) whose bot
verdict is counted or not given yet: the same policy as the report's counted clicks
(`report.COUNTED_VERDICTS`). Bot, preview, scanner, automation and probe requests are never
attributed. Windows are inclusive: a touch at `t` is eligible for a conversion at `v` when
``0 <= v - t <= window`` (a touch after the conversion never is). Ties at the same microsecond
go to the touch stored first (lower row id) for first click, to the one stored last for the
others. Single-touch models give the winning touch a credit of exactly 1 (`Fraction`), so a
conversion's credits add up to 1 under each model, or to 0 when nothing is eligible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.report import COUNTED_VERDICTS, is_counted, ratio

MODELS = ("last_click", "first_click", "last_touch")
DEFAULT_MODEL = "last_click"

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US

# What the largest SMS vendor defaults to: 5 days after a click, 12 hours after a delivery.
DEFAULT_CLICK_WINDOW_US = 5 * DAY_US
DEFAULT_DELIVERY_WINDOW_US = 12 * HOUR_US
PRESETS = {"1h": HOUR_US, "24h": 24 * HOUR_US, "7d": 7 * DAY_US}
MAX_WINDOW_US = 90 * DAY_US  # longer is no longer "caused by this message"
_UNITS = {"s": SECOND_US, "m": MINUTE_US, "h": HOUR_US, "d": DAY_US}
_WINDOW = re.compile(r"([0-9]{1,6})\s*([smhd])")


def parse_window(text: str, field: str) -> int:
    """Return the window `text` means, in µs: a preset (``1h``, ``24h``, ``7d``) or a whole
    number of seconds, minutes, hours or days (``90m``, ``5d``). Raises `InvalidInput` naming
    `field` for anything else, zero, or more than 90 days."""
    m = _WINDOW.fullmatch(text.strip().lower())
    if m is None:
        raise InvalidInput(
            f"{field}: {text!r} is not a window: use a number with s, m, h or d (e.g. 5d, 12h) "
            f"or a preset ({', '.join(PRESETS)})",
            field=field,
        )
    us = int(m.group(1)) * _UNITS[m.group(2)]
    if us <= 0 or us > MAX_WINDOW_US:
        raise InvalidInput(f"{field}: {text!r} must be more than 0 and at most 90d", field=field)
    return us


def format_window(us: int) -> str:
    """Return a window as its preset's name (``24h``), else in the largest whole unit that
    states it exactly (``5d``, ``12h``)."""
    for name, us_of in PRESETS.items():
        if us == us_of:
            return name
    for unit in ("d", "h", "m", "s"):
        if us % _UNITS[unit] == 0:
            return f"{us // _UNITS[unit]}{unit}"
    return f"{us / SECOND_US:g}s"


def check_model(model: str, field: str = "model") -> str:
    """Return `model` when it is one of `MODELS`; raise `InvalidInput` naming `field`."""
    if model not in MODELS:
        raise InvalidInput(f"{field}: {model!r} is not a model: one of {', '.join(MODELS)}", field)
    return model


@dataclass(frozen=True, slots=True)
class SettingsOverride:
    """Attribution settings as stored for a workspace or a campaign: None inherits (a campaign
    from its workspace, a workspace from the defaults)."""

    model: str | None = None
    click_window_us: int | None = None
    delivery_window_us: int | None = None


@dataclass(frozen=True, slots=True)
class AttributionSettings:
    """The settings in force: the model a report reads and the two windows.

    `source` says where each came from: ``default``, ``workspace`` or ``campaign``.
    """

    model: str = DEFAULT_MODEL
    click_window_us: int = DEFAULT_CLICK_WINDOW_US
    delivery_window_us: int = DEFAULT_DELIVERY_WINDOW_US
    source: tuple[str, str, str] = ("default", "default", "default")

    @classmethod
    def resolve(
        cls, workspace: SettingsOverride | None, campaign: SettingsOverride | None = None
    ) -> AttributionSettings:
        """Return the settings of a campaign (or, without `campaign`, of the workspace): each
        value from the campaign when set, else the workspace's, else the default."""
        values: list[object] = []
        sources: list[str] = []
        defaults = (DEFAULT_MODEL, DEFAULT_CLICK_WINDOW_US, DEFAULT_DELIVERY_WINDOW_US)
        for i, name in enumerate(("model", "click_window_us", "delivery_window_us")):
            value: object = defaults[i]
            source = "default"
            for level, over in (("workspace", workspace), ("campaign", campaign)):
                if over is not None and getattr(over, name) is not None:
                    value, source = getattr(over, name), level
            values.append(value)
            sources.append(source)
        model, click_us, delivery_us = values
        assert isinstance(model, str)
        assert isinstance(click_us, int)
        assert isinstance(delivery_us, int)
        return cls(model, click_us, delivery_us, (sources[0], sources[1], sources[2]))

    def windows(self) -> Windows:
        """Return the two windows."""
        return Windows(self.click_window_us, self.delivery_window_us)

    def as_dict(self) -> dict[str, object]:
        """Return the settings as a report states them."""
        return {
            "model": self.model,
            "click_window": format_window(self.click_window_us),
            "delivery_window": format_window(self.delivery_window_us),
            "click_window_seconds": self.click_window_us // SECOND_US,
            "delivery_window_seconds": self.delivery_window_us // SECOND_US,
            "source": dict(
                zip(("model", "click_window", "delivery_window"), self.source, strict=True)
            ),
        }


@dataclass(frozen=True, slots=True)
class Windows:
    """A campaign's click and delivery (view-through) windows, in µs."""

    click_us: int = DEFAULT_CLICK_WINDOW_US
    delivery_us: int = DEFAULT_DELIVERY_WINDOW_US


@dataclass(frozen=True, slots=True)
class ClickTouch:
    """One request of a contact on a tracked link (a candidate touch).

    `id` is the stored row's id (the tiebreak), `click_id` the public click id; `verdict` None:
    not classified yet; `final`: the verdict can no longer change by itself; `optout`: the link
    is an opt-out link.
    """

    id: int
    click_id: str
    message_id: int
    campaign_id: int
    link_id: int
    at_us: int
    is_click: bool
    verdict: str | None
    final: bool
    optout: bool = False

    @property
    def attributable(self) -> bool:
        """Whether the request may get credit (a counted click on an engagement link)."""
        return not self.optout and is_counted(self.verdict, self.is_click)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivered message of a contact (a view-through candidate)."""

    message_id: int
    campaign_id: int
    delivered_us: int


@dataclass(frozen=True, slots=True)
class Credit:
    """The credit one model gives for one conversion: to a click (`kind` ``click``) or to a
    delivered message (``view``), exactly `credit` of it; `delay_us`: conversion time minus
    the touch's time."""

    model: str
    kind: str
    campaign_id: int
    message_id: int
    link_id: int | None
    click: int | None  # the click's row id
    touch_us: int
    delay_us: int
    credit: Fraction = Fraction(1)


@dataclass(frozen=True, slots=True)
class Attribution:
    """One conversion attributed under every model: `credits` holds a `Credit` per model that
    found an eligible touch. `settled` is false while a click that could become eligible or
    ineligible still has a provisional verdict (finalization may change the answer)."""

    credits: tuple[Credit, ...]
    settled: bool

    def of(self, model: str) -> Credit | None:
        """Return the credit under `model`, or None when it found no eligible touch."""
        return next((c for c in self.credits if c.model == model), None)


WindowsOf = Callable[[int], Windows]  # campaign id -> its windows


def attribute(
    at_us: int,
    clicks: Iterable[ClickTouch],
    deliveries: Iterable[Delivery],
    windows_of: WindowsOf,
) -> Attribution:
    """Return the credits of a conversion at `at_us` under every model, from the converting
    contact's `clicks` (requests of any verdict, in any order) and `deliveries`, each touch
    eligible within its own campaign's window (`windows_of`)."""
    # One pass over the clicks, the hot loop of re-attribution (millions of clicks): the last
    # and first eligible click are kept as they come rather than sorted.
    last: ClickTouch | None = None
    first: ClickTouch | None = None
    clicked: set[int] = set()
    settled = True
    windows: dict[int, int] = {}
    for c in clicks:
        delay = at_us - c.at_us
        if delay < 0:
            continue
        window = windows.get(c.campaign_id)
        if window is None:
            window = windows[c.campaign_id] = windows_of(c.campaign_id).click_us
        in_window = delay <= window
        if not c.optout and c.is_click:
            if c.verdict is None or c.verdict in COUNTED_VERDICTS:  # `attributable`
                clicked.add(c.message_id)
                if in_window:
                    if last is None or (c.at_us, c.id) > (last.at_us, last.id):
                        last = c
                    if first is None or (c.at_us, c.id) < (first.at_us, first.id):
                        first = c
            if in_window and not c.final:
                settled = False
    credits: list[Credit] = []
    if last is not None and first is not None:
        credits.append(_click_credit("last_click", last, at_us))
        credits.append(_click_credit("first_click", first, at_us))
        credits.append(_click_credit("last_touch", last, at_us))
    else:
        views = [
            d
            for d in deliveries
            if d.message_id not in clicked
            and 0 <= at_us - d.delivered_us <= windows_of(d.campaign_id).delivery_us
        ]
        if views:
            v = max(views, key=lambda d: (d.delivered_us, d.message_id))
            credits.append(
                Credit("last_touch", "view", v.campaign_id, v.message_id, None, None,
                       v.delivered_us, at_us - v.delivered_us)
            )  # fmt: skip
    return Attribution(tuple(credits), settled)


def _click_credit(model: str, c: ClickTouch, at_us: int) -> Credit:
    return Credit(model, "click", c.campaign_id, c.message_id, c.link_id, c.id, c.at_us,
                  at_us - c.at_us)  # fmt: skip


# -- metrics ---------------------------------------------------------------------------------

METRICS = (
    "conversions: the sum of the credit the campaign's (or link's) touches got under the "
    "report's model; converters: distinct contacts credited; conversion rate: conversions per "
    "delivered message; CTCR (click-to-conversion rate): contacts with click-credited "
    "conversions divided by unique counted clickers; revenue: credited value per currency; "
    "RPM: revenue per delivered message; AOV: revenue per conversion; time to convert: from "
    "the credited click to the conversion."
)


@dataclass(frozen=True, slots=True)
class CreditedRow:
    """One credit as a report reads it: which link (None for a view), which contact, how much
    credit, the conversion's value and currency (None: no value), and the delay since the
    touch; `kind` ``click`` or ``view``."""

    link_id: int | None
    contact_id: int
    kind: str
    credit: float
    value: float | None
    currency: str | None
    delay_us: int


@dataclass(frozen=True, slots=True)
class Revenue:
    """Credited value in one currency: `revenue`, `rpm` per delivered message, `aov` per
    conversion that carried a value in it."""

    currency: str
    revenue: float
    rpm: float | None
    aov: float | None


@dataclass(frozen=True, slots=True)
class Delays:
    """Seconds from the credited click to the conversion: median and percentiles (inclusive
    method: linear between closest ranks), over click-credited conversions."""

    count: int
    median_s: float | None
    p25_s: float | None
    p75_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, delays_us: Sequence[int]) -> Delays:
        """Return the figures of `delays_us`."""
        s = sorted(delays_us)
        return cls.of_ranks(len(s), {r: s[r] for r in delay_ranks(len(s))})

    @classmethod
    def of_ranks(cls, n: int, at: Mapping[int, int] | Sequence[int]) -> Delays:
        """Return the figures of `n` delays from the few of them they depend on: `at` maps
        (at least) each rank of `delay_ranks(n)` (0-based, ascending order) to its delay in
        µs; the delays sorted are such a map. The same
        arithmetic as `statistics.median` and `statistics.quantiles(n=20,
        method="inclusive")`, to the last bit (tests/domain/test_attribution.py)."""
        if not n:
            return cls(0, None, None, None, None)

        def v(rank: int) -> float:
            return at[rank] / SECOND_US

        if n == 1:
            return cls(1, v(0), v(0), v(0), v(0))
        half = n // 2
        median = v(half) if n % 2 else (v(half - 1) + v(half)) / 2

        def q(i: int) -> float:  # the i-th of 19 cut points at 5 % steps
            j, delta = divmod(i * (n - 1), 20)
            return (v(j) * (20 - delta) + v(j + 1) * delta) / 20

        return cls(n, median, q(5), q(15), q(18))


def delay_ranks(n: int) -> set[int]:
    """The ranks (0-based, ascending) of the delays `Delays.of_ranks` reads out of `n`."""
    if n <= 1:
        return set(range(n))
    ranks = {n // 2} if n % 2 else {n // 2 - 1, n // 2}
    for i in (5, 15, 18):
        j = i * (n - 1) // 20
        ranks.update((j, j + 1))
    return ranks


@dataclass(frozen=True, slots=True)
class ConversionFigures:
    """The conversion metrics of a campaign or a link (see `METRICS`)."""

    conversions: float
    click_conversions: float
    view_conversions: float
    converters: int
    click_converters: int
    conversion_rate: float | None
    ctcr: float | None
    revenue: list[Revenue]
    time_to_convert: Delays


@dataclass(frozen=True, slots=True)
class CreditSums:
    """What the metrics need of a group of credits (a campaign's, or a link's): the credit in
    all and of clicks, distinct contacts credited (with credit > 0) in all and for clicks, per
    currency the credited value (value × credit) and the credit of conversions that carried a
    value in it, and the delays of click credits. Storage sums them where the credits are
    (`storage.attribution`); `of_rows` is the same from the rows themselves."""

    conversions: float
    click_conversions: float
    converters: int
    click_converters: int
    revenue: dict[str, tuple[float, float]]
    time_to_convert: Delays

    @classmethod
    def of_rows(cls, rows: Sequence[CreditedRow]) -> CreditSums:
        """Return the sums of credited `rows`."""
        by_currency: dict[str, tuple[float, float]] = {}
        for r in rows:
            if r.value is not None and r.currency is not None:
                rev, n = by_currency.get(r.currency, (0.0, 0.0))
                by_currency[r.currency] = (rev + r.value * r.credit, n + r.credit)
        return cls(
            conversions=sum(r.credit for r in rows),
            click_conversions=sum(r.credit for r in rows if r.kind == "click"),
            converters=len({r.contact_id for r in rows if r.credit > 0}),
            click_converters=len(
                {r.contact_id for r in rows if r.kind == "click" and r.credit > 0}
            ),
            revenue=by_currency,
            time_to_convert=Delays.of([r.delay_us for r in rows if r.kind == "click"]),
        )


@dataclass(frozen=True, slots=True)
class CampaignCredits:
    """A campaign's credits under one model, summed where they are stored: in all, per link
    (by row id; a link without credits is left out), and how many are not settled (they wait
    for final bot verdicts)."""

    total: CreditSums
    links: dict[int, CreditSums]
    unsettled: int


NO_CREDITS = CreditSums.of_rows(())


def figures(rows: Sequence[CreditedRow], delivered: int, clickers: int) -> ConversionFigures:
    """Return the metrics of credited `rows` over `delivered` messages and `clickers` unique
    counted clickers (the denominators of conversion rate, RPM and CTCR)."""
    return figures_of(CreditSums.of_rows(rows), delivered, clickers)


def figures_of(sums: CreditSums, delivered: int, clickers: int) -> ConversionFigures:
    """Return the metrics of a group of credits from their `sums` (see `figures`)."""
    revenue = [
        Revenue(cur, round(rev, 6), _fratio(rev, delivered), _fratio(rev, n))
        for cur, (rev, n) in sorted(sums.revenue.items())
    ]
    return ConversionFigures(
        conversions=sums.conversions,
        click_conversions=sums.click_conversions,
        view_conversions=sums.conversions - sums.click_conversions,
        converters=sums.converters,
        click_converters=sums.click_converters,
        conversion_rate=_fratio(sums.conversions, delivered),
        ctcr=ratio(sums.click_converters, clickers),
        revenue=revenue,
        time_to_convert=sums.time_to_convert,
    )


def _fratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
