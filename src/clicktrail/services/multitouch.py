"""Multi-touch attribution: each conversion's path of touches (SMS deliveries, SMS clicks with a
counted verdict, other channels' touchpoints) and every model's fractional credit for each
touch, per channel and campaign, and the conversion paths export (docs/attribution.md,
"Multi-touch"; the models themselves are `domain.multitouch`).

**Computed when read, never stored.** A report or an export reads the conversions, the
converting contacts' touches and the attribution settings as they are now, so a change of
windows, a bot verdict that turns a tap into a bot (or back), a late touchpoint or a replaced
conversion value is in the next answer, with no re-attribution job and nothing to go stale. The
single-touch credits (`services.attribution`, table `conversion_credits`) are untouched by it.
The cost is one pass over the workspace's conversions per report (bench figures in
docs/attribution.md).

**Lookback windows** are the attribution settings (`services.attribution.settings_of`): an SMS
click counts within its campaign's click window, an SMS delivery within its campaign's delivery
window, another channel's touchpoint within the workspace's click window (touchpoints belong to
no clicktrail campaign). A click counts when single-touch attribution would credit it: a GET on
an engagement link (not an opt-out link) with a counted verdict or none yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from clicktrail.domain import attribution as attr
from clicktrail.domain import multitouch as mt
from clicktrail.domain.attribution import AttributionSettings, SettingsOverride
from clicktrail.domain.models import Workspace
from clicktrail.services.attribution import Touches
from clicktrail.services.exports import Column, ExportPlan, check_params, iso_utc, phone_columns

BATCH = 2000  # conversions per read
MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class PathConversion:
    """A conversion as a path starts: who converted (None: unknown) and when."""

    id: int
    public_id: str
    event: str
    value_micros: int | None
    currency: str | None
    occurred_us: int
    contact_id: int | None
    external_id: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class OtherTouch:
    """A stored touchpoint of another channel, as attribution reads it."""

    id: int
    public_id: str
    channel: str
    at_us: int
    campaign: str | None
    source: str | None
    touch_id: str | None


@dataclass(frozen=True, slots=True)
class SmsRef:
    """What an SMS touch is: its campaign and message (row ids), and for a click its link,
    public click id, verdict (None: not classified yet) and whether that verdict is final."""

    campaign_id: int
    message_id: int
    link_id: int | None = None
    click_id: str | None = None
    verdict: str | None = None
    final: bool = True


class MultiTouchStore(Protocol):
    """What multi-touch attribution reads (`storage.multitouch.MultiTouchQueries`)."""

    def attribution_overrides(
        self, workspace_id: int
    ) -> tuple[SettingsOverride | None, dict[int, SettingsOverride]]:
        """Return the workspace's stored attribution settings and its campaigns', by id."""
        ...

    def optout_links(self, workspace_id: int) -> set[int]:
        """Return the ids of the workspace's opt-out links."""
        ...

    def touches(self, contact_ids: Sequence[int]) -> dict[int, Touches]:
        """Return these contacts' SMS touches: clicks that may count, delivered messages."""
        ...

    def path_conversions(
        self, workspace_id: int, after_id: int, limit: int, since_us: int | None,
        until_us: int | None,
    ) -> list[PathConversion]:  # fmt: skip
        """Return up to `limit` of the workspace's conversions after row `after_id`, by id,
        that occurred in [since, until)."""
        ...

    def touchpoints_of(
        self, workspace_id: int, contact_ids: Sequence[int]
    ) -> dict[int, list[OtherTouch]]:
        """Return the workspace's touchpoints of these contacts, by contact."""
        ...

    def campaign_slugs(self, workspace_id: int) -> dict[int, str]:
        """Return the slug of each of the workspace's campaigns, by id."""
        ...

    def link_labels(self, workspace_id: int) -> dict[int, tuple[int, str]]:
        """Return (number from 1, URL) of each of the workspace's links, by id."""
        ...

    def message_public_ids(self, message_ids: Sequence[int]) -> dict[int, str]:
        """Return the public id of each of these messages, by row id."""
        ...


def half_life_us(text: str | None) -> int:
    """Return the half-life a request asks for (``7d``, ``36h``; None: the default, 7 days).
    Raises `InvalidInput` naming ``half_life`` for anything but 1 hour to 90 days."""
    if text is None or not text.strip():
        return mt.DEFAULT_HALF_LIFE_US
    return mt.check_half_life(attr.parse_window(text, "half_life"))


@dataclass(frozen=True)
class Lookback:
    """The settings a multi-touch answer used: the workspace's attribution settings (its
    campaigns may override the SMS windows), the touchpoints' window and the half-life."""

    workspace: AttributionSettings
    overrides: dict[int, AttributionSettings]
    half_life_us: int

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as a report states them."""
        s = self.workspace
        return {
            "half_life": attr.format_window(self.half_life_us),
            "half_life_seconds": self.half_life_us // MICROS,
            "click_window": attr.format_window(s.click_window_us),
            "delivery_window": attr.format_window(s.delivery_window_us),
            "touchpoint_window": attr.format_window(s.click_window_us),
            "campaigns_with_own_windows": len(self.overrides),
        }


class _Context:
    """One workspace's windows, opt-out links and names, read once per answer."""

    def __init__(self, store: MultiTouchStore, workspace_id: int, half_life: int) -> None:
        ws, campaigns = store.attribution_overrides(workspace_id)
        own = {cid: AttributionSettings.resolve(ws, over) for cid, over in campaigns.items()}
        self.lookback = Lookback(AttributionSettings.resolve(ws), own, half_life)
        self.optout = store.optout_links(workspace_id)
        self.slugs = store.campaign_slugs(workspace_id)
        self.links = store.link_labels(workspace_id)

    def settings_of(self, campaign_id: int) -> AttributionSettings:
        return self.lookback.overrides.get(campaign_id, self.lookback.workspace)


def touches_of(sms: Touches, others: Sequence[OtherTouch], ctx: _Context) -> list[mt.Touch]:
    """Return a contact's candidate touches (any time; `domain.multitouch.path` keeps those
    within their windows before a conversion)."""
    out: list[mt.Touch] = []
    for d in sms.deliveries:
        s = ctx.settings_of(d.campaign_id)
        out.append(mt.Touch(mt.SMS, "delivery", d.delivered_us, ctx.slugs.get(d.campaign_id),
                            s.delivery_window_us, d.message_id,
                            SmsRef(d.campaign_id, d.message_id)))  # fmt: skip
    for c in sms.clicks:
        if c.link_id in ctx.optout:
            c = replace(c, optout=True)
        if not c.attributable:
            continue
        s = ctx.settings_of(c.campaign_id)
        out.append(mt.Touch(mt.SMS, "click", c.at_us, ctx.slugs.get(c.campaign_id),
                            s.click_window_us, c.id,
                            SmsRef(c.campaign_id, c.message_id, c.link_id, c.click_id, c.verdict,
                                   c.final)))  # fmt: skip
    window = ctx.lookback.workspace.click_window_us
    for o in others:
        out.append(mt.Touch(o.channel, "touch", o.at_us, o.campaign, window, o.id, o))
    return out


Paths = list[tuple[PathConversion, list[mt.Credited]]]


def credited_paths(
    store: MultiTouchStore, ws: Workspace, half_life: int, since_us: int | None = None,
    until_us: int | None = None, batch: int = BATCH, ctx: _Context | None = None,
) -> Iterator[Paths]:  # fmt: skip
    """Yield the workspace's conversions (occurred in [since, until)) with their credited
    paths, `batch` conversions at a time, in the order they were stored."""
    ctx = ctx or _Context(store, ws.id, half_life)
    after = 0
    while page := store.path_conversions(ws.id, after, batch, since_us, until_us):
        after = page[-1].id
        contacts = sorted({c.contact_id for c in page if c.contact_id is not None})
        sms = store.touches(contacts) if contacts else {}
        others = store.touchpoints_of(ws.id, contacts) if contacts else {}
        empty = Touches()
        out: Paths = []
        for conv in page:
            cands: list[mt.Touch] = []
            if conv.contact_id is not None:
                cands = touches_of(sms.get(conv.contact_id, empty),
                                   others.get(conv.contact_id, []), ctx)  # fmt: skip
            p = mt.path(conv.occurred_us, cands)
            out.append((conv, mt.credit_path(conv.occurred_us, p, half_life)))
        yield out


# -- the report: credit per channel and campaign under every model ------------------------------


@dataclass
class Share:
    """What one channel (or campaign of a channel) got: touches in paths, conversions whose
    path holds one of its touches, credit under each model (`mt.MODELS` order) and credited
    revenue per currency under each model."""

    touches: int = 0
    conversions: int = 0
    credit: list[float] = field(default_factory=lambda: [0.0] * len(mt.MODELS))
    revenue: dict[str, list[float]] = field(default_factory=dict)

    def add(self, c: mt.Credited, conv: PathConversion, first: bool) -> None:
        self.touches += 1
        self.conversions += first
        for i, x in enumerate(c.credits):
            self.credit[i] += x
        if conv.value_micros is not None and conv.currency is not None:
            rev = self.revenue.setdefault(conv.currency, [0.0] * len(mt.MODELS))
            for i, x in enumerate(c.credits):
                rev[i] += x * conv.value_micros / MICROS

    def as_dict(self) -> dict[str, Any]:
        return {
            "touches": self.touches,
            "conversions": self.conversions,
            "credit": {m: round(self.credit[i], 12) for i, m in enumerate(mt.MODELS)},
            "revenue": [
                {"currency": cur, **{m: round(v[i], 6) for i, m in enumerate(mt.MODELS)}}
                for cur, v in sorted(self.revenue.items())
            ],
        }


@dataclass
class ChannelReport:
    """Credit per channel and per (channel, campaign) under every model, side by side, over
    the conversions that occurred in [since, until): `conversions` all of them,
    `with_touches` those whose path is not empty (the others give no credit)."""

    lookback: Lookback
    since_us: int | None
    until_us: int | None
    conversions: int = 0
    with_touches: int = 0
    channels: dict[str, Share] = field(default_factory=dict)
    campaigns: dict[tuple[str, str | None], Share] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping (channels and campaigns by credit under
        linear, largest first)."""

        def order(item: tuple[Any, Share]) -> tuple[float, str]:
            return (-item[1].credit[0], str(item[0]))

        return {
            "settings": self.lookback.as_dict(),
            "since": iso_utc(self.since_us),
            "until": iso_utc(self.until_us),
            "models": list(mt.MODELS),
            "conversions": self.conversions,
            "with_touches": self.with_touches,
            "channels": [{"channel": ch, **s.as_dict()}
                         for ch, s in sorted(self.channels.items(), key=order)],
            "campaigns": [{"channel": ch, "campaign": cp, **s.as_dict()}
                          for (ch, cp), s in sorted(self.campaigns.items(), key=order)],
        }  # fmt: skip


def channel_report(
    store: MultiTouchStore, ws: Workspace, half_life: int = mt.DEFAULT_HALF_LIFE_US,
    since_us: int | None = None, until_us: int | None = None, batch: int = BATCH,
) -> ChannelReport:  # fmt: skip
    """Return the workspace's multi-touch credit per channel and campaign (see `ChannelReport`)."""
    ctx = _Context(store, ws.id, half_life)
    report = ChannelReport(ctx.lookback, since_us, until_us)
    for page in credited_paths(store, ws, half_life, since_us, until_us, batch, ctx):
        for conv, path in page:
            report.conversions += 1
            report.with_touches += bool(path)
            seen: set[object] = set()
            for c in path:
                ch, key = c.touch.channel, (c.touch.channel, c.touch.campaign)
                report.channels.setdefault(ch, Share()).add(c, conv, ch not in seen)
                report.campaigns.setdefault(key, Share()).add(c, conv, key not in seen)
                seen.update((ch, key))
    return report


def campaign_share(report: ChannelReport, slug: str) -> dict[str, Any]:
    """Return what an SMS campaign got in `report` (zeros when none of its touches is in a
    path), with the settings used: the conversions report's ``multi_touch`` section."""
    share = report.campaigns.get((mt.SMS, slug), Share())
    return {"settings": report.lookback.as_dict(), **share.as_dict()}


# -- the conversion paths export -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRow:
    """One row of the conversion paths export: a touch of a conversion's path with its credit
    under every model (`credited` None: a conversion without touches, one row of its own)."""

    conv: PathConversion
    touches: int
    credited: mt.Credited | None
    message_id: str | None = None
    link: int | None = None

    def _sms(self) -> SmsRef | None:
        ref = self.credited.touch.ref if self.credited else None
        return ref if isinstance(ref, SmsRef) else None

    def _other(self) -> OtherTouch | None:
        ref = self.credited.touch.ref if self.credited else None
        return ref if isinstance(ref, OtherTouch) else None

    def credit(self, model: str) -> float | None:
        """The touch's credit under `model` (None without a touch)."""
        return None if self.credited is None else self.credited.of(model)


def _touch(get: Any) -> Any:
    return lambda r: None if r.credited is None else get(r.credited.touch)


def _credit_of(model: str) -> Any:
    return lambda r: r.credit(model)


_TS = "timestamp"
PATH_COLUMNS: tuple[Column, ...] = (
    Column("conversion_id", "string", lambda r: r.conv.public_id),
    Column("event", "string", lambda r: r.conv.event),
    Column("occurred_at", _TS, lambda r: r.conv.occurred_us),
    Column("value", "float64",
           lambda r: None if r.conv.value_micros is None else r.conv.value_micros / MICROS),
    Column("currency", "string", lambda r: r.conv.currency),
    Column("external_id", "string", lambda r: r.conv.external_id),
    Column("phone", "string", lambda r: r.conv.phone),
    Column("touches", "int32", lambda r: r.touches),
    Column("position", "int32", lambda r: None if r.credited is None else r.credited.position),
    Column("channel", "string", _touch(lambda t: t.channel)),
    Column("kind", "string", _touch(lambda t: t.kind)),
    Column("touch_at", _TS, _touch(lambda t: t.at_us)),
    Column("delay_s", "float64",
           lambda r: None if r.credited is None
           else (r.conv.occurred_us - r.credited.touch.at_us) / MICROS),
    Column("campaign", "string", _touch(lambda t: t.campaign)),
    Column("source", "string", lambda r: (o := r._other()) and o.source),
    Column("message_id", "string", lambda r: r.message_id),
    Column("link", "int32", lambda r: r.link),
    Column("click_id", "string", lambda r: (s := r._sms()) and s.click_id),
    Column("verdict", "string", lambda r: (s := r._sms()) and s.verdict),
    Column("verdict_final", "bool",
           lambda r: None if (s := r._sms()) is None or s.click_id is None else s.final),
    Column("touchpoint_id", "string", lambda r: (o := r._other()) and o.public_id),
    Column("touch_id", "string", lambda r: (o := r._other()) and o.touch_id),
    *(Column(f"credit_{m}", "float64", _credit_of(m)) for m in mt.MODELS),
)  # fmt: skip


def path_rows(
    store: MultiTouchStore, ws: Workspace, half_life: int, since_us: int | None,
    until_us: int | None, batch: int = BATCH,
) -> Iterator[list[PathRow]]:  # fmt: skip
    """Yield the export's rows, a page of conversions at a time: each conversion's touches in
    path order, or one row without a touch."""
    ctx = _Context(store, ws.id, half_life)
    for page in credited_paths(store, ws, half_life, since_us, until_us, batch, ctx):
        mids = sorted({c.touch.ref.message_id for _conv, p in page for c in p
                       if isinstance(c.touch.ref, SmsRef)})  # fmt: skip
        public = store.message_public_ids(mids) if mids else {}
        rows: list[PathRow] = []
        for conv, p in page:
            if not p:
                rows.append(PathRow(conv, 0, None))
            for c in p:
                ref = c.touch.ref
                if isinstance(ref, SmsRef):
                    label = ctx.links.get(ref.link_id) if ref.link_id is not None else None
                    link = label[0] if label else None
                    rows.append(PathRow(conv, len(p), c, public.get(ref.message_id), link))
                else:
                    rows.append(PathRow(conv, len(p), c))
        yield rows


def plan_paths_export(
    store: MultiTouchStore, ws: Workspace, *, format: str = "csv", since: str | None = None,
    until: str | None = None, phone: str = "plain", salt: str | None = None,
    half_life: str | None = None,
) -> ExportPlan:  # fmt: skip
    """Plan the export of the workspace's conversion paths (`PATH_COLUMNS`, docs/exports.md):
    conversions that occurred in [since, until), each with its touches and their credit under
    every model. Raises `InvalidInput` naming the bad parameter; nothing is read before."""
    since_us, until_us = check_params(format, phone, salt, since, until)
    hl = half_life_us(half_life)
    columns = tuple(phone_columns(PATH_COLUMNS, phone, salt))
    return ExportPlan("conversion-paths", format, columns,
                      lambda: path_rows(store, ws, hl, since_us, until_us))  # fmt: skip
