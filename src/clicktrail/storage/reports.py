"""The report queries: what a campaign reached, from messages and clicks (docs/reports.md).

How it stays fast at 1,000,000 messages and 200,000 clicks (bench/report_bench.py):

* The rollups of `storage/rollup.py`: per-recipient clicks (read with index-only scans: no
  clicks-messages join and no per-recipient grouping at report time) and per-country message
  counts (checked against the live status counts on every report).
* Per-link totals, verdicts and devices read the covering index `ix_clicks_report_ua`
  (campaign, user_agent, link, verdict, is_click; migration 0005) in one streaming pass.
* Message statuses come from `ix_messages_campaign_id_status` (an index-only count).
* User agents are parsed once per distinct string (the parser passed in is memoised).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.bots.model import UaFacts
from clicktrail.domain.models import Campaign
from clicktrail.domain.report import (
    COUNTED_VERDICTS,
    F_COUNTED,
    F_ENG,
    F_OPT,
    F_RAW,
    F_RAW_ENG,
    BotShare,
    CampaignComparison,
    CampaignReport,
    ClickFigures,
    ClickTiming,
    CountryStats,
    FullReport,
    LinkStats,
    OptOutStats,
    Provisional,
    Reach,
    RecipientClicks,
    RecipientsPage,
    encode_cursor,
    is_counted,
    ratio,
    shares,
    timing_buckets,
)
from clicktrail.domain.status import Status
from clicktrail.services.bots import DEFAULT_SETTLE_US
from clicktrail.services.variants import VariantFigures
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import CampaignQueries
from clicktrail.storage.rollup import OPTOUT, country_counts, country_of
from clicktrail.storage.variants import VariantQueries

SENT_OR_LATER = (Status.SENT, Status.DELIVERED, Status.FAILED, Status.UNDELIVERED)

UaParser = Callable[[str | None], UaFacts]

ck, m, ct = t.clicks, t.messages, t.contacts
COUNTED = sa.and_(ck.c.is_click, sa.or_(ck.c.verdict.is_(None), ck.c.verdict.in_(COUNTED_VERDICTS)))
# A campaign's test sends, found through the partial index `ix_messages_is_test` (declared
# `WHERE is_test`). Written as that term: SQLAlchemy renders the Boolean column as `is_test = 1`
# on SQLite, which the planner does not match with the index's term, so each lookup scanned
# all the campaign's messages (3 of them per report: the full report 3.7x slower, issue 15).
IS_TEST: sa.ColumnElement[Any] = sa.literal_column("messages.is_test")


def _no_ua(_ua: str | None) -> UaFacts:
    return UaFacts()


class ReportQueries:
    """The report SQL over one engine. `ua_facts` parses user agents (the composition root
    passes the UA adapter; without it devices are "unknown"); `settle_us` is the bot settle
    window (`bot_settle_seconds`), which says when provisional verdicts become final."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        ua_facts: UaParser | None = None,
        settle_us: int = DEFAULT_SETTLE_US,
    ) -> None:
        self.engine = engine
        self.ua_facts = ua_facts or _no_ua
        self.settle_us = settle_us

    # -- campaigns (for the services' lookups) --------------------------------------------------

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None:
        """Return the campaign `ref` (slug or public id) of the workspace, or None."""
        return CampaignQueries(self.engine).find_campaign(workspace_id, ref)

    def list_campaigns(self, workspace_id: int) -> list[Campaign]:
        """Return the workspace's campaigns."""
        return CampaignQueries(self.engine).list_campaigns(workspace_id)

    def variant_figures(self, campaign: Campaign) -> dict[str, VariantFigures]:
        """The counts per variant (`storage.variants`, its own module)."""
        return VariantQueries(self.engine).variant_figures(campaign)

    # -- the classic report ---------------------------------------------------------------------

    def campaign_report(self, campaign: Campaign) -> CampaignReport:
        """Return delivery and click counts of `campaign`: the headline over engagement links,
        all links and opt-out links beside it, per link, and how much is still provisional;
        click counts bot-filtered with the raw counts beside them."""
        with self.engine.connect() as conn:
            by_status = self._status_counts(conn, campaign.id)
            per_link = self._link_counts(conn, campaign.id)
            uniq, _, _ = self._rollup_flags(conn, campaign)
            by_reason = self._reasons(conn, campaign.id)
            provisional = self._provisional(conn, campaign)
        return self._summary(campaign, by_status, per_link, uniq, by_reason, provisional)

    def campaign_reach(self, campaign: Campaign) -> Reach:
        """Return the denominators of the campaign's conversions report: delivered messages
        and unique counted clickers, per link too. The figures of `campaign_report`, from
        three narrow queries: a count of the delivered messages in their index, and counts of
        the click rollup's rows (no pass over the campaign's requests)."""
        mc, ml = t.message_clicks, t.message_link_clicks
        delivered_q = sa.select(sa.func.count()).where(
            m.c.campaign_id == campaign.id, m.c.status == Status.DELIVERED.value
        )
        with self.engine.connect() as conn:
            delivered = int(conn.execute(delivered_q).scalar_one())
            delivered -= self._test_status_counts(conn, campaign.id).get(Status.DELIVERED.value, 0)
            clickers = conn.execute(
                sa.select(sa.func.count()).where(
                    mc.c.campaign_id == campaign.id, mc.c.flags.op("&")(F_ENG) != 0
                )
            ).scalar_one()
            per_link = {
                int(link): int(n)
                for link, n in conn.execute(
                    sa.select(ml.c.link_id, sa.func.count())
                    .where(ml.c.campaign_id == campaign.id, ml.c.counted != 0)
                    .group_by(ml.c.link_id)
                )
            }
        return Reach(
            delivered, int(clickers), {lk.id: int(per_link.get(lk.id, 0)) for lk in campaign.links}
        )

    def _provisional(self, conn: sa.Connection, campaign: Campaign) -> Provisional:
        """The campaign's requests whose verdict is not final yet: how many, how many of them
        are counted engagement clicks, and the newest one's time (few rows: the last settle
        window's, found through ix_clicks_final_at_us)."""
        eng_ids = [lk.id for lk in campaign.links if lk.role != OPTOUT]
        counted = sa.case((self._eng(eng_ids), 1), else_=0)
        pending: sa.ColumnElement[Any] = ck.c.final.is_(sa.false())
        if conn.dialect.name == "sqlite":
            # SQLite's statistics (no STAT4) cannot tell that few requests are pending: told
            # nothing, it scans every request of the campaign (37 ms per 200,000; issue 15).
            pending = sa.func.unlikely(pending)
        q = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(counted), 0), sa.func.max(ck.c.at_us)
        ).where(pending, ck.c.campaign_id == campaign.id)
        tests = self._test_message_ids(conn, campaign.id)
        if tests:
            q = q.where(ck.c.message_id.not_in(tests))
        n, n_counted, last_us = conn.execute(q).one()
        return Provisional.of(int(n), int(n_counted), last_us, self.settle_us)

    def _status_counts(self, conn: sa.Connection, campaign_id: int) -> dict[str, int]:
        counts = {
            s: int(n)
            for s, n in conn.execute(
                sa.select(m.c.status, sa.func.count())
                .where(m.c.campaign_id == campaign_id)
                .group_by(m.c.status)
            )
        }
        # Test sends never count: subtracted through their small partial index, so the count
        # above stays index-only.
        for s, n in self._test_status_counts(conn, campaign_id).items():
            counts[s] -= n
        return {s: n for s, n in counts.items() if n}

    def _test_status_counts(self, conn: sa.Connection, campaign_id: int) -> dict[str, int]:
        return {
            s: int(n)
            for s, n in conn.execute(
                sa.select(m.c.status, sa.func.count())
                .where(m.c.campaign_id == campaign_id, IS_TEST)
                .group_by(m.c.status)
            )
        }

    def _test_message_ids(self, conn: sa.Connection, campaign_id: int) -> list[int]:
        """Ids of the campaign's test sends, whose requests reports leave out (few: a
        partial index finds them)."""
        return list(
            conn.execute(sa.select(m.c.id).where(m.c.campaign_id == campaign_id, IS_TEST)).scalars()
        )

    def _link_counts(self, conn: sa.Connection, campaign_id: int) -> list[Any]:
        # (user agent, link, verdict, is_click) -> requests: one index-ordered streaming pass
        # over ix_clicks_report_ua that gives per-link totals, verdicts and devices at once.
        q = (
            sa.select(
                ck.c.user_agent, ck.c.link_id, ck.c.verdict, ck.c.is_click,
                sa.func.count().label("n"),
            )
            .where(ck.c.campaign_id == campaign_id)
            .group_by(ck.c.user_agent, ck.c.link_id, ck.c.verdict, ck.c.is_click)
        )  # fmt: skip
        tests = self._test_message_ids(conn, campaign_id)
        if tests:  # (only then does the pass leave the index for the message ids)
            q = q.where(ck.c.message_id.not_in(tests))
        return list(conn.execute(q))

    def _reasons(self, conn: sa.Connection, campaign_id: int) -> dict[str, int]:

        by_reason: Counter[str] = Counter()
        q = (
            sa.select(sa.cast(ck.c.reasons, sa.Text), sa.func.count())
            .where(ck.c.campaign_id == campaign_id, ck.c.reasons.is_not(None))
            .group_by(sa.cast(ck.c.reasons, sa.Text))
        )
        tests = self._test_message_ids(conn, campaign_id)
        if tests:
            q = q.where(ck.c.message_id.not_in(tests))
        for reasons, n in conn.execute(q):
            for reason in (json.loads(reasons) if reasons else None) or ():
                by_reason[reason] += int(n)
        return dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))

    def _summary(
        self,
        campaign: Campaign,
        by_status: dict[str, int],
        per_link: list[Any],
        uniq: dict[str, int],
        by_reason: dict[str, int],
        provisional: Provisional,
    ) -> CampaignReport:
        delivered = by_status.get(Status.DELIVERED.value, 0)
        tot: Counter[str] = Counter()
        link_tot: dict[int, Counter[str]] = {lk.id: Counter() for lk in campaign.links}
        by_verdict: Counter[str] = Counter()
        for r in per_link:
            counted = is_counted(r.verdict, r.is_click)
            n = int(r.n)
            by_verdict[r.verdict or "unclassified"] += n
            for c in (tot, link_tot.setdefault(r.link_id, Counter())):
                c["requests"] += n
                c["total"] += n if counted else 0
                c["raw_total"] += n if r.is_click else 0
                c["previews"] += n if r.verdict == "preview" else 0
        links = [
            LinkStats(
                lk.index + 1, lk.url, lk.role, link_tot[lk.id]["total"], uniq[f"c_{lk.id}"],
                link_tot[lk.id]["requests"], ratio(uniq[f"c_{lk.id}"], delivered),
                link_tot[lk.id]["raw_total"], uniq[f"r_{lk.id}"], link_tot[lk.id]["previews"],
            )
            for lk in campaign.links
        ]  # fmt: skip
        eng = [lk for lk in links if lk.role != OPTOUT]
        opt = [lk for lk in links if lk.role == OPTOUT]
        eng_total = sum(lk.total_clicks for lk in eng)
        optout = OptOutStats(
            links=len(opt),
            total_clicks=sum(lk.total_clicks for lk in opt),
            unique_clicks=uniq["c_opt"],
            rate=ratio(uniq["c_opt"], delivered),
            raw_total_clicks=sum(lk.raw_total_clicks for lk in opt),
        )
        return CampaignReport(
            campaign=campaign.public_id,
            name=campaign.name,
            messages=sum(by_status.values()),
            queued=by_status.get(Status.QUEUED.value, 0) + by_status.get(Status.SENDING.value, 0),
            sent=sum(by_status.get(s.value, 0) for s in SENT_OR_LATER),
            delivered=delivered,
            failed=by_status.get(Status.FAILED.value, 0),
            undelivered=by_status.get(Status.UNDELIVERED.value, 0),
            total_clicks=eng_total,
            unique_clicks=uniq["c_eng"],
            ctr=ratio(uniq["c_eng"], delivered),
            repeat_click_rate=ratio(eng_total, uniq["c_eng"]),
            raw_total_clicks=sum(lk.raw_total_clicks for lk in eng),
            raw_unique_clicks=uniq["r_eng"],
            raw_ctr=ratio(uniq["r_eng"], delivered),
            requests=tot["requests"],
            preview_fetches=tot["previews"],
            by_verdict=dict(sorted(by_verdict.items())),
            by_reason=by_reason,
            all_links=ClickFigures(
                total_clicks=tot["total"],
                unique_clicks=uniq["c_all"],
                ctr=ratio(uniq["c_all"], delivered),
                repeat_click_rate=ratio(tot["total"], uniq["c_all"]),
                raw_total_clicks=tot["raw_total"],
                raw_unique_clicks=uniq["r_all"],
                raw_ctr=ratio(uniq["r_all"], delivered),
            ),
            optout=optout,
            provisional=provisional,
            links=links,
        )

    # -- the full report ------------------------------------------------------------------------

    def full_report(self, campaign: Campaign, *, now_us: int, first_page: int) -> FullReport:
        """Return every section of the report of `campaign` (see `FullReport`)."""
        eng_ids = [lk.id for lk in campaign.links if lk.role != OPTOUT]
        with self.engine.connect() as conn:
            by_status = self._status_counts(conn, campaign.id)
            per_link = self._link_counts(conn, campaign.id)
            uniq, clickers, first_buckets = self._rollup_flags(conn, campaign)
            by_reason = self._reasons(conn, campaign.id)
            median_first_s = self._median_first(conn, campaign.id, sum(first_buckets.values()))
            all_buckets = self._click_buckets(conn, campaign.id)
            countries = country_counts(conn, self.engine, campaign.id, by_status)
            provisional = self._provisional(conn, campaign)
            failed_receipt = self._failed_receipt_clicks(conn, campaign.id)
        summary = self._summary(campaign, by_status, per_link, uniq, by_reason, provisional)
        # Timing: first clicks and every click, both bucketed in the rollup.
        timing = ClickTiming(
            buckets=timing_buckets({k: n for k, n in all_buckets.items() if k >= 0}, first_buckets),
            median_first_click_s=_round(median_first_s),
            first_clicks=sum(first_buckets.values()),
            before_delivery=all_buckets.get(-1, 0),
            failed_receipt=failed_receipt,
            without_receipt=all_buckets.get(-2, 0) - failed_receipt,
        )
        device: Counter[str] = Counter()
        os: Counter[str] = Counter()
        browser: Counter[str] = Counter()
        for r in per_link:
            if r.link_id not in eng_ids or not is_counted(r.verdict, r.is_click):
                continue
            f, n = self.ua_facts(r.user_agent), int(r.n)
            device[f.device or "unknown"] += n
            os[f.os or "unknown"] += n
            browser[f.browser or "unknown"] += n
        country_rows = [
            CountryStats(c, rec, dlv, clickers.get(c, 0), ratio(clickers.get(c, 0), dlv))
            for c, (rec, dlv) in countries.items()
        ]
        country_rows += [
            CountryStats(c, 0, 0, n, None) for c, n in clickers.items() if c not in countries
        ]
        country_rows.sort(key=lambda r: (-r.recipients, -r.unique_clicks, r.country))
        requests, counted = summary.requests, summary.all_links.total_clicks
        bots = BotShare(
            requests=requests,
            raw_clicks=summary.all_links.raw_total_clicks,
            counted_clicks=counted,
            not_counted=requests - counted,
            share=ratio(requests - counted, requests),
            by_verdict=shares(summary.by_verdict, requests),
            by_reason=shares(by_reason, requests),
        )
        recipients = self.recipients(campaign, search=None, after=None, limit=first_page)
        return FullReport(
            summary=summary,
            timing=timing,
            devices=shares(dict(device)),
            oses=shares(dict(os)),
            browsers=shares(dict(browser)),
            countries=country_rows,
            bots=bots,
            recipients=recipients,
            generated_us=now_us,
        )

    def _eng(self, eng_ids: Sequence[int]) -> Any:
        return sa.and_(COUNTED, ck.c.link_id.in_(eng_ids) if eng_ids else sa.false())

    def _rollup_flags(
        self, conn: sa.Connection, campaign: Campaign
    ) -> tuple[dict[str, int], Counter[str], dict[int, int]]:
        """Distinct recipients per link and per link set, counted and raw, the counted
        engagement clickers per country and {timing bucket: recipients whose first counted
        engagement click fell in it} (at or after the receipt): two index-only passes over
        the click rollup."""
        mc, ml = t.message_clicks, t.message_link_clicks
        uniq = dict.fromkeys(("c_all", "r_all", "c_eng", "r_eng", "c_opt"), 0)
        for lk in campaign.links:
            uniq[f"c_{lk.id}"] = uniq[f"r_{lk.id}"] = 0
        clickers: Counter[str] = Counter()
        firsts: Counter[int] = Counter()
        bits = (
            ("c_all", F_COUNTED), ("r_all", F_RAW), ("c_eng", F_ENG), ("r_eng", F_RAW_ENG),
            ("c_opt", F_OPT),
        )  # fmt: skip
        for country, flags, first, n in conn.execute(
            sa.select(mc.c.country, mc.c.flags, mc.c.first_bucket, sa.func.count())
            .where(mc.c.campaign_id == campaign.id)
            .group_by(mc.c.country, mc.c.flags, mc.c.first_bucket)
        ):
            if first is not None and first >= 0:
                firsts[int(first)] += int(n)
            for key, bit in bits:
                if flags & bit:
                    uniq[key] += int(n)
            if flags & F_ENG:
                clickers[country] += int(n)
        for link_id, counted, n in conn.execute(
            sa.select(ml.c.link_id, ml.c.counted, sa.func.count())
            .where(ml.c.campaign_id == campaign.id)
            .group_by(ml.c.link_id, ml.c.counted)
        ):
            uniq[f"r_{link_id}"] = uniq.get(f"r_{link_id}", 0) + int(n)
            if counted:
                uniq[f"c_{link_id}"] = uniq.get(f"c_{link_id}", 0) + int(n)
        return uniq, clickers, dict(firsts)

    def _first_buckets(self, conn: sa.Connection, campaign_id: int) -> dict[int, int]:
        """{bucket key: recipients whose first counted engagement click fell in it}, over
        first clicks at or after the receipt."""
        mc = t.message_clicks
        return {
            int(b): int(n)
            for b, n in conn.execute(
                sa.select(mc.c.first_bucket, sa.func.count())
                .where(mc.c.campaign_id == campaign_id, mc.c.first_bucket >= 0)
                .group_by(mc.c.first_bucket)
            )
        }

    def _median_first(self, conn: sa.Connection, campaign_id: int, total: int) -> float | None:
        """Median seconds from delivery to the first counted engagement click over the `total`
        recipients whose first such click came at or after the receipt: the middle one or two
        rows of ix_message_clicks_first (the bucket grows with the delay)."""
        if not total:
            return None
        mc = t.message_clicks
        mid = total // 2
        odd = total % 2 == 1
        vals = [
            int(d) / 1_000_000
            for d in conn.execute(
                sa.select(mc.c.first_delay_us)
                .where(mc.c.campaign_id == campaign_id, mc.c.first_bucket >= 0)
                .order_by(mc.c.first_bucket, mc.c.first_delay_us)
                .offset(mid if odd else mid - 1)
                .limit(1 if odd else 2)
            ).scalars()
        ]
        return float(vals[0]) if odd else (vals[0] + vals[1]) / 2

    def _failed_receipt_clicks(self, conn: sa.Connection, campaign_id: int) -> int:
        """Counted engagement clicks on messages whose receipt says they failed (no delivery
        time: bucket -2 of the rollup, like messages without a receipt, told apart here by
        the message's status)."""
        mb = t.message_click_buckets
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(mb.c.clicks), 0))
                .select_from(mb.join(m, m.c.id == mb.c.message_id))
                .where(
                    mb.c.campaign_id == campaign_id,
                    mb.c.bucket == -2,
                    m.c.status.in_((Status.FAILED.value, Status.UNDELIVERED.value)),
                )
            ).scalar_one()
        )

    def _click_buckets(self, conn: sa.Connection, campaign_id: int) -> dict[int, int]:
        """Counted engagement clicks per bucket key: minute i → i (0-59), hour h → 59 + h,
        before delivery → -1, no receipt → -2."""
        mb = t.message_click_buckets
        return {
            int(k): int(n)
            for k, n in conn.execute(
                sa.select(mb.c.bucket, sa.func.sum(mb.c.clicks))
                .where(mb.c.campaign_id == campaign_id)
                .group_by(mb.c.bucket)
            )
        }

    # -- recipients -----------------------------------------------------------------------------

    def recipients(
        self, campaign: Campaign, *, search: str | None, after: int | None, limit: int
    ) -> RecipientsPage:
        """Return up to `limit` recipients with counted engagement clicks, by message id after
        `after`, whose phone or external id contains `search` (case-insensitive)."""
        eng_ids = [lk.id for lk in campaign.links if lk.role != OPTOUT]
        mc = t.message_clicks
        where = [mc.c.campaign_id == campaign.id, mc.c.clicks > 0]
        if search:
            like = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_"
            ) + "%"  # fmt: skip
            matching = (
                sa.select(m.c.id)
                .join(ct, ct.c.id == m.c.contact_id)
                .where(
                    m.c.campaign_id == campaign.id,
                    sa.or_(
                        m.c.to_phone.like(like, escape="\\"),
                        sa.func.lower(ct.c.external_id).like(like, escape="\\"),
                    ),
                )
            )
            where.append(mc.c.message_id.in_(matching))
        with self.engine.connect() as conn:
            total = int(
                conn.execute(sa.select(sa.func.count()).select_from(mc).where(*where)).scalar_one()
            )
            page_where = [*where, mc.c.message_id > after] if after is not None else where
            page = conn.execute(
                sa.select(
                    mc.c.message_id,
                    mc.c.clicks.label("n"),
                    mc.c.first_us,
                    mc.c.last_us,
                )
                .where(*page_where)
                .order_by(mc.c.message_id)
                .limit(limit + 1)
            ).all()
            more = len(page) > limit
            page = page[:limit]
            ids = [r.message_id for r in page]
            info = {
                r.id: r
                for r in conn.execute(
                    sa.select(m.c.id, m.c.public_id, m.c.to_phone, ct.c.external_id)
                    .join(ct, ct.c.id == m.c.contact_id)
                    .where(m.c.id.in_(ids))
                )
            }
            last_ua: dict[int, str | None] = {}
            for mid, ua in conn.execute(
                sa.select(ck.c.message_id, ck.c.user_agent)
                .where(ck.c.message_id.in_(ids), self._eng(eng_ids))
                .order_by(ck.c.message_id, ck.c.at_us.desc(), ck.c.id.desc())
            ):
                last_ua.setdefault(mid, ua)
        items = []
        for r in page:
            i = info[r.message_id]
            f = self.ua_facts(last_ua.get(r.message_id))
            items.append(
                RecipientClicks(
                    message=i.public_id, phone=i.to_phone, external_id=i.external_id,
                    country=country_of(i.to_phone), clicks=int(r.n),
                    first_click_us=int(r.first_us), last_click_us=int(r.last_us),
                    device=f.device, os=f.os, browser=f.browser,
                )
            )  # fmt: skip
        return RecipientsPage(items, encode_cursor(ids[-1]) if more and ids else None, total)

    # -- comparison -----------------------------------------------------------------------------

    def compare(
        self, workspace_id: int, *, since_us: int | None, until_us: int | None
    ) -> list[CampaignComparison]:
        """Return engagement CTR and median time to first click of the workspace's campaigns
        sent within [since_us, until_us), newest first."""
        c = t.campaigns
        q = sa.select(c.c.public_id, c.c.sent_us).where(c.c.workspace_id == workspace_id)
        if since_us is not None:
            q = q.where(c.c.sent_us >= since_us)
        if until_us is not None:
            q = q.where(c.c.sent_us < until_us)
        with self.engine.connect() as conn:
            picked = conn.execute(q).all()
        out = []
        for public_id, sent_us in picked:
            campaign = self.find_campaign(workspace_id, public_id)
            if campaign is None:  # deleted meanwhile
                continue
            mc = t.message_clicks
            with self.engine.connect() as conn:
                by_status = self._status_counts(conn, campaign.id)
                firsts = self._first_buckets(conn, campaign.id)
                median_s = self._median_first(conn, campaign.id, sum(firsts.values()))
                unique, total = conn.execute(
                    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(mc.c.clicks), 0)).where(
                        mc.c.campaign_id == campaign.id, mc.c.clicks > 0
                    )
                ).one()
            delivered = by_status.get(Status.DELIVERED.value, 0)
            out.append(
                CampaignComparison(
                    campaign=campaign.public_id, slug=campaign.slug, name=campaign.name,
                    sent_us=sent_us, delivered=delivered, total_clicks=int(total),
                    unique_clicks=int(unique), ctr=ratio(int(unique), delivered),
                    median_first_click_s=_round(median_s),
                )
            )  # fmt: skip
        out.sort(key=lambda r: (-(r.sent_us or 0), r.slug))
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
