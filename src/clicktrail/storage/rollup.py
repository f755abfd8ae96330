"""The report's rollups: what reports read instead of grouping clicks and phones per recipient
at report time (docs/reports.md; the report SQL that reads them: `storage/reports.py`).

* The per-recipient click rollup (migration 0006): `message_clicks` (one row per message with a
  GET: flags of counted / raw / engagement / opt-out clicks, counted engagement clicks, first
  and last, first click's delay since delivery and its timing bucket, country),
  `message_link_clicks` (per message and link) and `message_click_buckets` (counted
  engagement clicks per message and timing bucket). `refresh_click_rollup` recomputes the
  rows of every message touched by the click writers (`storage/clicks.py`,
  `storage/inbox.put_batch`) and by receipts (`storage/messages.apply_receipts`), in their
  transaction; `rebuild_click_rollup` redoes a campaign or all (migration backfill). Its
  arithmetic is `domain.report.message_clicks`.
* Per-country, per-status message counts (`report_country_counts`): countries need every
  recipient's phone, the one scan too slow to repeat, so the counts are kept and checked
  against the live status counts on every report. Statuses only move forward and messages
  are never removed, so equal per-status totals mean nothing changed; any difference rebuilds
  the campaign's rows (one pass over its messages). Phone numbers are read once per leading
  `PHONE_KEY` characters (calling code plus the leading national digits that decide the
  region, e.g. the NANP area code).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import phonenumbers
import sqlalchemy as sa

from clicktrail.domain.report import delay_bucket, message_clicks
from clicktrail.domain.status import Status
from clicktrail.storage import tables as t
from clicktrail.storage.sql import chunks

OPTOUT = "optout"
UNKNOWN_COUNTRY = "ZZ"
PHONE_KEY = 8  # "+" and 7 digits: enough to tell every shared calling code's regions apart

ck, m = t.clicks, t.messages


# -- countries ----------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _country_of_key(sample: str) -> str:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(sample, None))
    except phonenumbers.NumberParseException:
        return UNKNOWN_COUNTRY
    return str(region) if region and region != "001" else UNKNOWN_COUNTRY


_by_key: dict[str, str] = {}


def country_of(phone: str) -> str:
    """Return the ISO 3166 region of an E.164 number ("ZZ" when unknown), cached per
    leading `PHONE_KEY` characters."""
    key = phone[:PHONE_KEY]
    found = _by_key.get(key)
    if found is None:
        found = _by_key[key] = _country_of_key(phone)
    return found


def country_counts(
    conn: sa.Connection, engine: sa.Engine, campaign_id: int, by_status: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """{country: (recipients, delivered)} of a campaign from `report_country_counts`, read on
    `conn`; rebuilt (`rebuild_country_counts`, its own transaction on `engine`) when its totals
    per status differ from `by_status`, the live counts."""
    r = t.report_country_counts
    rows = [
        (str(country), str(status), int(n))
        for country, status, n in conn.execute(
            sa.select(r.c.country, r.c.status, r.c.messages).where(r.c.campaign_id == campaign_id)
        )
    ]
    cached: Counter[str] = Counter()
    for _, status, n in rows:
        cached[status] += int(n)
    if dict(cached) != {s: n for s, n in by_status.items() if n}:
        rows = rebuild_country_counts(engine, campaign_id)
    out: dict[str, tuple[int, int]] = {}
    for country, status, n in rows:
        rec, dlv = out.get(country, (0, 0))
        out[country] = (
            rec + int(n),
            dlv + (int(n) if status == Status.DELIVERED.value else 0),
        )
    return out


def rebuild_country_counts(engine: sa.Engine, campaign_id: int) -> list[tuple[str, str, int]]:
    """Recount the campaign's messages per country and status into the rollup and return
    the rows (country, status, messages)."""
    r = t.report_country_counts
    key = sa.func.substr(m.c.to_phone, 1, PHONE_KEY)
    counts: Counter[tuple[str, str]] = Counter()
    with engine.begin() as conn:
        for sample, status, n in conn.execute(
            sa.select(sa.func.min(m.c.to_phone), m.c.status, sa.func.count())
            .where(m.c.campaign_id == campaign_id, m.c.is_test.is_(sa.false()))
            .group_by(key, m.c.status)
        ):
            counts[(country_of(sample), status)] += int(n)
        conn.execute(r.delete().where(r.c.campaign_id == campaign_id))
        rows = [(c, s, n) for (c, s), n in sorted(counts.items())]
        if rows:
            conn.execute(
                r.insert(),
                [
                    {"campaign_id": campaign_id, "country": c, "status": s, "messages": n}
                    for c, s, n in rows
                ],
            )
    return rows


# -- the per-recipient click rollup ------------------------------------------------------------

_ROLLUP_LOCK = 0x6374  # first key of PostgreSQL advisory locks (campaign id is the second)


def refresh_click_rollup(
    conn: sa.Connection,
    message_ids: Iterable[int] = (),
    *,
    click_ids: Iterable[str] = (),
) -> None:
    """Recompute the click rollup (`message_clicks`, `message_link_clicks`,
    `message_click_buckets`) of the given messages and of the messages of the given click ids,
    from their clicks and delivery times, inside the caller's transaction.

    Idempotent: the rows of a message are always rebuilt whole, so replays, re-classification
    and late receipts leave them exact. On PostgreSQL a transaction-scoped advisory lock per
    campaign serialises concurrent refreshes, and the clicks are read after taking it, so the
    last writer sees every committed click."""
    ids = set(message_ids)
    cids = list(click_ids)
    for cchunk in chunks(sorted(set(cids))):
        ids.update(
            conn.execute(sa.select(ck.c.message_id).where(ck.c.click_id.in_(cchunk))).scalars()
        )
    if not ids:
        return
    ordered = sorted(ids)
    if conn.dialect.name == "postgresql":
        campaigns: set[int] = set()
        for chunk in chunks(ordered):
            campaigns.update(
                conn.execute(
                    sa.select(m.c.campaign_id).where(m.c.id.in_(chunk)).distinct()
                ).scalars()
            )
        for cid in sorted(campaigns):
            conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(_ROLLUP_LOCK, cid % 2_147_483_648))
            )
    for chunk in chunks(ordered):
        _refresh(conn, chunk)


def rebuild_click_rollup(conn: sa.Connection, campaign_id: int | None = None) -> None:
    """Rebuild the click rollup of one campaign (or of all) from scratch, inside the caller's
    transaction (migration 0006's backfill; repairs)."""
    tables = (t.message_clicks, t.message_link_clicks, t.message_click_buckets)
    for tb in tables:
        d = tb.delete()
        conn.execute(d if campaign_id is None else d.where(tb.c.campaign_id == campaign_id))
    q = sa.select(ck.c.message_id).distinct().order_by(ck.c.message_id)
    if campaign_id is not None:
        q = q.where(ck.c.campaign_id == campaign_id)
    ids = list(conn.execute(q).scalars())
    # Migration 0006 rebuilds before migration 0009 added test sends (`messages.is_test`).
    tests = "is_test" in {c["name"] for c in sa.inspect(conn).get_columns("messages")}
    for chunk in chunks(ids, 5000):
        _refresh(conn, chunk, fresh=True, test_sends=tests)


def _refresh(
    conn: sa.Connection, ids: Sequence[int], *, fresh: bool = False, test_sends: bool = True
) -> None:
    msgs: dict[int, tuple[int, str, int | None]] = {}
    by_campaign: dict[int, list[int]] = {}
    tests: set[int] = set()  # test sends: their rows are cleared, never rebuilt
    for mid, cp, phone, dlv, is_test in conn.execute(
        sa.select(
            m.c.id,
            m.c.campaign_id,
            m.c.to_phone,
            m.c.delivered_us,
            m.c.is_test if test_sends else sa.false(),
        ).where(m.c.id.in_(ids))
    ):
        msgs[mid] = (cp, phone, dlv)
        by_campaign.setdefault(cp, []).append(mid)
        if is_test:
            tests.add(mid)
    optout_links = set(
        conn.execute(
            sa.select(t.links.c.id).where(
                t.links.c.campaign_id.in_(by_campaign), t.links.c.role == OPTOUT
            )
        ).scalars()
    )
    per_msg: dict[int, list[tuple[Any, ...]]] = {}
    for cp, mids in by_campaign.items():
        # (campaign, message) first: read from the covering index ix_clicks_report alone.
        for mid, lid, verdict, is_click, at_us in conn.execute(
            sa.select(ck.c.message_id, ck.c.link_id, ck.c.verdict, ck.c.is_click, ck.c.at_us)
            .where(ck.c.campaign_id == cp, ck.c.message_id.in_(mids))
        ):  # fmt: skip
            per_msg.setdefault(mid, []).append((lid, verdict, is_click, at_us))
        if not fresh:  # (campaign, message) leads every key of the rollup
            for tb in (t.message_clicks, t.message_link_clicks, t.message_click_buckets):
                conn.execute(tb.delete().where(tb.c.campaign_id == cp, tb.c.message_id.in_(mids)))
    rows: list[tuple[Any, ...]] = []
    link_rows: list[tuple[Any, ...]] = []
    bucket_rows: list[tuple[Any, ...]] = []
    for mid, clicks in per_msg.items():
        if mid in tests:
            continue
        cp, phone, dlv = msgs[mid]
        mc = message_clicks(clicks, optout_links, dlv)
        if mc is None:
            continue
        first = mc.first_us
        rows.append(
            (
                cp, mid, country_of(phone), mc.flags, mc.clicks, first, mc.last_us,
                None if first is None or dlv is None else first - dlv,
                None if first is None else delay_bucket(first, dlv),
            )
        )  # fmt: skip
        link_rows += [(cp, mid, lid, int(cnt)) for lid, cnt in mc.links.items()]
        bucket_rows += [(cp, mid, b, k) for b, k in mc.buckets.items()]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for tb, batch in (
        (t.message_clicks, rows),
        (t.message_link_clicks, link_rows),
        (t.message_click_buckets, bucket_rows),
    ):
        if not batch:
            continue
        names = [c.name for c in tb.columns]
        if conn.dialect.name == "postgresql":
            # COPY: psycopg's executemany costs about 100 µs a row here (a re-classification
            # of 100,000 requests spent 90 s in it).
            raw = conn.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY {tb.name} ({', '.join(names)}) FROM STDIN") as copy,
            ):
                for row in batch:
                    copy.write_row(row)
            continue
        # plain executemany: no per-row parameter processing (ints and strings)
        conn.exec_driver_sql(
            f"INSERT INTO {tb.name} ({', '.join(names)}) "  # names of our own tables
            f"VALUES ({', '.join(mark for _ in names)})",
            batch,
        )
