"""`clicktrail report` and `clicktrail compare`: a campaign's full report, campaigns side by side
(registered on the root command by `register`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from clicktrail.cli.options import (
    JsonOpt,
    WorkspaceOpt,
    container,
    out,
    print_json,
    workspace_of,
)
from clicktrail.domain.report import COUNTED_CLICKS, Provisional, iso_us
from clicktrail.services import (
    receipts,
    reports,
)
from clicktrail.services.clock import now_us

REPORT_HELP = (
    "Print a campaign's full report: delivery, clicks (bots filtered, raw beside), "
    "timing, links, devices, countries, bots and the first recipients who clicked "
    f"(docs/reports.md). {COUNTED_CLICKS} The report says whether these numbers are final.\n\n"
    "--json prints what GET /v1/campaigns/CAMPAIGN/report/full returns."
)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _finality(p: Provisional, campaign: str) -> str:
    if p.final:
        return "numbers: final (every bot verdict has settled)"
    return (
        f"numbers: provisional: {p.counted_clicks} counted clicks ({p.requests} requests) may "
        f"still be filtered as bots; final from {p.settles_at} ({p.settle_seconds} s settle "
        f"window; `clicktrail bots finalize {campaign}` settles them now)"
    )


def report(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    c = container()
    full = reports.full_report(
        c.report_queries, workspace_of(c, workspace), campaign, now_us=now_us()
    )
    if as_json:
        print_json(full.as_dict())
        return
    r, tm = full.summary, full.timing
    a, o, p = r.all_links, r.optout, r.provisional
    t = Table(title=f"{r.name} ({r.campaign})", show_header=False)
    median_s = "—" if tm.median_first_click_s is None else f"{tm.median_first_click_s:.0f} s"
    for label, value in [
        ("messages", r.messages), ("sent", r.sent), ("delivered", r.delivered),
        ("failed", r.failed), ("undelivered", r.undelivered), ("queued", r.queued),
        ("clicks (bots filtered, opt-out links apart)", r.total_clicks),
        ("unique clickers", r.unique_clicks),
        ("CTR (unique / delivered)", _pct(r.ctr)),
        ("repeat click rate (total / unique)", "—" if r.repeat_click_rate is None else f"{r.repeat_click_rate:.2f}"),
        ("raw clicks / unique / CTR", f"{r.raw_total_clicks} / {r.raw_unique_clicks} / {_pct(r.raw_ctr)}"),
        ("median time to first click", median_s),
        ("opt-out clicks / unique / rate", f"{o.total_clicks} / {o.unique_clicks} / {_pct(o.rate)}"),
        ("all links: clicks / unique / CTR", f"{a.total_clicks} / {a.unique_clicks} / {_pct(a.ctr)}"),
        ("preview fetches", r.preview_fetches),
        ("requests incl. HEAD probes", r.requests),
        ("not counted as clicks (of requests)", f"{full.bots.not_counted} ({_pct(full.bots.share)})"),
    ]:  # fmt: skip
        t.add_row(label, str(value))
    out.print(t)
    out.print(_finality(p, campaign), markup=False)
    if r.by_verdict:
        out.print("requests by verdict: " + ", ".join(f"{k} {v}" for k, v in r.by_verdict.items()))
    if r.by_reason:
        out.print("top reasons: " + ", ".join(f"{k} {v}" for k, v in list(r.by_reason.items())[:8]))
    lt = Table("link", "role", "url", "clicks", "unique", "CTR", "raw clicks")
    for lk in r.links:
        lt.add_row(
            str(lk.link), lk.role, lk.url, str(lk.total_clicks), str(lk.unique_clicks),
            _pct(lk.ctr), str(lk.raw_total_clicks),
        )  # fmt: skip
    out.print(lt)
    busy = [b for b in tm.buckets if b.clicks]
    if busy:
        out.print(
            "clicks after delivery: "
            + ", ".join(
                f"{b.start_s // 60} min {b.clicks}" if b.start_s < 3600 else f"{b.start_s // 3600} h {b.clicks}"
                for b in busy[:12]
            )
            + (" …" if len(busy) > 12 else "")
        )  # fmt: skip
    for title, rows in [("device", full.devices), ("OS", full.oses), ("browser", full.browsers)]:
        if rows:
            out.print(
                f"by {title}: "
                + ", ".join(f"{x.name} {x.count} ({_pct(x.share)})" for x in rows[:6])
            )
    if full.countries:
        ct = Table("country", "recipients", "delivered", "unique", "CTR")
        for cs in full.countries:
            ct.add_row(
                cs.country,
                str(cs.recipients),
                str(cs.delivered),
                str(cs.unique_clicks),
                _pct(cs.ctr),
            )
        out.print(ct)
    if full.recipients.items:
        rt = Table(
            "phone",
            "external id",
            "clicks",
            "first click",
            "last click",
            "device",
            title=f"recipients who clicked ({full.recipients.total}; first {len(full.recipients.items)})",
        )
        for x in full.recipients.items:
            rt.add_row(
                x.phone,
                x.external_id or "",
                str(x.clicks),
                iso_us(x.first_click_us) or "",
                iso_us(x.last_click_us) or "",
                " / ".join(v for v in (x.device, x.os, x.browser) if v),
            )
        out.print(rt)


def compare(
    since: Annotated[
        str | None, typer.Option(help="Campaigns sent at or after (ISO 8601).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Campaigns sent before (ISO 8601).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare campaigns sent in a date range: CTR and median time to first click
    (the report comparison view; --json prints what GET /v1/reports/compare returns)."""
    c = container()
    since_us = receipts.parse_time(since, "since", 0) if since else None
    until_us = receipts.parse_time(until, "until", 0) if until else None
    rows = reports.compare_campaigns(
        c.report_queries, workspace_of(c, workspace), since_us=since_us, until_us=until_us
    )
    if as_json:
        print_json({"items": [x.as_dict() for x in rows]})
        return
    t = Table("campaign", "sent", "delivered", "clicks", "unique", "CTR", "median to first click")
    for x in rows:
        median_s = "—" if x.median_first_click_s is None else f"{x.median_first_click_s:.0f} s"
        t.add_row(
            x.slug,
            iso_us(x.sent_us) or "—",
            str(x.delivered),
            str(x.total_clicks),
            str(x.unique_clicks),
            _pct(x.ctr),
            median_s,
        )
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add `report` and `compare` to the root command `app`."""
    app.command(help=REPORT_HELP)(report)
    app.command()(compare)
