"""Clicks on SQL: storing them (from the inbox or the spool), the stored requests that
classification reads, their verdicts, and the early sightings that list scanners.

Implements the click side of `services.clicks` and `services.bots` (`ClickStore`,
`InboxQueries`, `PendingQueries`) on `clicks`, `click_inbox` and `early_sightings`; the inbox
itself is `storage/inbox.py`'s. Requests are read through the driver with JSON decoded by
orjson: SQLAlchemy's per-row type processing (JSON, booleans) cost more than the query itself
in a re-classification. Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.clicks import ClickRecord, InboxBatch
from clicktrail.domain.report import COUNTED_VERDICTS
from clicktrail.services.clock import now_us
from clicktrail.services.ports import Selection, StoredRequest
from clicktrail.storage import inbox
from clicktrail.storage import tables as t
from clicktrail.storage.engagement import mark_dirty
from clicktrail.storage.events import click_events, verdicts_of
from clicktrail.storage.rollup import refresh_click_rollup
from clicktrail.storage.sql import insert_ignore, is_postgres

# Stored requests with their message's times ({text}: ``::text`` on PostgreSQL, so JSON
# columns come back as text for orjson; `?` placeholders, `%s` on PostgreSQL).
REQUESTS_SQL = (
    "SELECT c.id, c.click_id, c.campaign_id, c.message_id, c.contact_id, c.link_id, "
    "c.at_us, c.method, c.ip, c.user_agent, c.headers{text}, c.verdict, c.score, "
    "c.reasons{text}, c.classifier_version, c.final, m.sent_us, m.delivered_us "
    "FROM clicks c JOIN messages m ON m.id = c.message_id WHERE {where} ORDER BY {order}"
)
# The keys of requests to finalize, in settle order.
TO_FINALIZE_SQL = (
    "SELECT campaign_id, at_us, id FROM clicks WHERE {where} "
    "ORDER BY campaign_id, at_us, id LIMIT ?"
)
# One statement for a whole batch of verdicts instead of one UPDATE per request: PostgreSQL
# joins arrays (unnest), SQLite a temporary table; both return the rows' messages and contacts.
SAVE_VERDICTS_PG = (
    "UPDATE clicks AS c SET verdict = u.verdict, score = u.score, "
    "reasons = u.reasons::json, classifier_version = u.version, final = u.final "
    "FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], "
    "%s::bool[]) AS u(click_id, verdict, score, reasons, version, final) "
    "WHERE c.click_id = u.click_id RETURNING c.message_id, c.contact_id"
)
VERDICT_UPDATES_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS verdict_updates (click_id TEXT PRIMARY KEY, "
    "verdict TEXT, score INTEGER, reasons TEXT, version TEXT, final INTEGER)"
)
VERDICT_UPDATES_FILL = "INSERT INTO verdict_updates VALUES (?, ?, ?, ?, ?, ?)"
VERDICT_UPDATES_EMPTY = "DELETE FROM verdict_updates"
# Driven by the batch (IN), each row found through the click id's unique index.
SAVE_VERDICTS_SQLITE = (
    "UPDATE clicks SET (verdict, score, reasons, classifier_version, final) = "
    "(SELECT verdict, score, reasons, version, final FROM verdict_updates u "
    "WHERE u.click_id = clicks.click_id) "
    "WHERE click_id IN (SELECT click_id FROM verdict_updates) "
    "RETURNING message_id, contact_id"
)
_ck, _es, _lk = t.clicks, t.early_sightings, t.links
INBOX_SIZE = sa.select(sa.func.coalesce(sa.func.sum(t.click_inbox.c.n), 0))
LINK_COUNT = sa.select(sa.func.count()).where(_lk.c.campaign_id == sa.bindparam("campaign"))
CLICK_COUNT = sa.select(sa.func.count()).select_from(_ck)
# Entities seen early in at least `min` campaigns since a time.
LISTED_EARLY = (
    sa.select(_es.c.entity)
    .where(_es.c.at_us >= sa.bindparam("since"))
    .group_by(_es.c.entity)
    .having(sa.func.count() >= sa.bindparam("min"))
)


class ClickQueries:
    """Clicks and their verdicts on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def insert_clicks(
        self, records: Iterable[ClickRecord], verdicts: Sequence[Verdict] | None = None
    ) -> int:
        """Store clicks, with their provisional verdicts when given (aligned with `records`).

        A click id already stored is skipped, so replaying the spool is idempotent.
        """
        recs = list(records)
        if not recs:
            return 0
        with self.engine.begin() as conn:
            inbox.insert_clicks(conn, recs, verdicts)
            refresh_click_rollup(conn, {r.message_id for r in recs})
            mark_dirty(conn, (r.contact_id for r in recs))
        return len(recs)

    def take_inbox(self, limit: int) -> InboxBatch | None:
        """Return about `limit` clicks from the inbox, oldest first (`storage.inbox.take_batch`)."""
        return inbox.take_batch(self.engine, limit)

    def put_inbox(self, batch: InboxBatch, verdicts: Sequence[Verdict]) -> int:
        """Store a taken batch with its verdicts and remove it from the inbox, in one
        transaction; return how many clicks it held (`storage.inbox.put_batch`)."""
        return inbox.put_batch(self.engine, batch, verdicts)

    def inbox_size(self) -> int:
        """Return how many requests wait in `click_inbox` for the classification job."""
        with self.engine.connect() as conn:
            return int(conn.execute(INBOX_SIZE).scalar_one())

    def delivery_times(
        self, message_ids: Iterable[int]
    ) -> dict[int, tuple[int | None, int | None]]:
        """Return {message id: (sent_us, delivered_us)}."""
        return inbox.delivery_times(self.engine, message_ids)

    def _requests(self, where: str, params: Sequence[Any], order: str) -> list[StoredRequest]:
        # Through the driver with JSON decoded by orjson: SQLAlchemy's per-row type processing
        # (JSON, booleans) cost more than the query itself in a re-classification.
        postgres = is_postgres(self.engine)
        sql = REQUESTS_SQL.format(text="::text" if postgres else "", where=where, order=order)
        if postgres:
            sql = sql.replace("?", "%s")
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql, tuple(params)).all()
        return [_stored_request(r) for r in rows]

    def requests_to_finalize(
        self,
        before_us: int,
        limit: int,
        after: tuple[int, int, int] | None = None,
        also: Selection | None = None,
    ) -> list[tuple[int, int, int]]:
        """Return the keys (campaign id, at_us, row id) of up to `limit` requests before
        `before_us` that are not final yet — or, with `also`, that it selects, final or not —
        in that order, from the first key after `after` on."""
        where = ["at_us < ?"]
        params: list[Any] = [before_us]
        if also is None:
            where.append("NOT final")
        elif also.campaign_id is not None or also.since_us is not None:
            chosen = []
            if also.campaign_id is not None:
                chosen.append("campaign_id = ?")
                params.append(also.campaign_id)
            if also.since_us is not None:
                chosen.append("at_us >= ?")
                params.append(also.since_us)
            where.append(f"(NOT final OR ({' AND '.join(chosen)}))")
        if after is not None:
            # A row-value comparison: SQLite and PostgreSQL seek ix_clicks_campaign_id_at_us.
            where.append("(campaign_id, at_us, id) > (?, ?, ?)")
            params.extend(after)
        sql = TO_FINALIZE_SQL.format(where=" AND ".join(where))
        if is_postgres(self.engine):
            sql = sql.replace("?", "%s")
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql, (*params, limit)).all()
        return [(int(c), int(a), int(i)) for c, a, i in rows]

    def pending_verdicts(self, campaign_id: int) -> tuple[int, int, int | None]:
        """Return the campaign's requests whose bot verdict is not final: how many, how many of
        them are GET requests counted as clicks now (human, suspect, no verdict), the newest
        one's at_us (None: none)."""
        c = t.clicks
        counted = sa.and_(
            c.c.method == "GET",
            sa.or_(c.c.verdict.is_(None), c.c.verdict.in_(COUNTED_VERDICTS)),
        )
        with self.engine.connect() as conn:
            n, k, newest = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((counted, 1), else_=0)), 0),
                    sa.func.max(c.c.at_us),
                ).where(c.c.campaign_id == campaign_id, sa.not_(c.c.final))
            ).one()
        return int(n), int(k), None if newest is None else int(newest)

    def requests_between(self, campaign_id: int, from_us: int, to_us: int) -> list[StoredRequest]:
        """Return the campaign's requests with from_us <= at_us <= to_us, in time order."""
        return self._requests(
            "c.campaign_id = ? AND c.at_us BETWEEN ? AND ?",
            (campaign_id, from_us, to_us),
            "c.at_us, c.id",
        )

    def requests_page(
        self,
        after_id: int,
        limit: int,
        campaign_id: int | None,
        since_us: int | None,
        unclassified_only: bool = False,
    ) -> list[tuple[int, StoredRequest]]:
        """Return (row id, request) of up to `limit` requests with id > `after_id`, by id."""
        where = ["c.id > ?"]
        params: list[Any] = [after_id]
        if unclassified_only:
            where.append("c.verdict IS NULL")
        if campaign_id is not None:
            where.append("c.campaign_id = ?")
            params.append(campaign_id)
        if since_us is not None:
            where.append("c.at_us >= ?")
            params.append(since_us)
        found = self._requests(" AND ".join(where), (*params, limit), "c.id LIMIT ?")
        return [(r.row_id, r) for r in found]

    def record_early_sightings(self, sightings: Sequence[tuple[str, int, int]]) -> None:
        """Store (entity, campaign id, time) sightings; one per entity and campaign is kept."""
        if sightings:
            with self.engine.begin() as conn:
                conn.execute(
                    insert_ignore(conn, _es),
                    [{"entity": e, "campaign_id": c, "at_us": at} for e, c, at in sightings],
                )

    def listed_early_entities(self, since_us: int, min_campaigns: int) -> set[str]:
        """Return entities seen early in at least `min_campaigns` campaigns since `since_us`."""
        with self.engine.connect() as conn:
            found = conn.execute(LISTED_EARLY, {"since": since_us, "min": min_campaigns})
            return set(found.scalars())

    def link_count(self, campaign_id: int) -> int:
        """Return how many links the campaign's template has."""
        with self.engine.connect() as conn:
            return int(conn.execute(LINK_COUNT, {"campaign": campaign_id}).scalar_one())

    def save_verdicts(self, verdicts: Sequence[tuple[str, Verdict, bool]]) -> None:
        """Store (click id, verdict, final) for each request (the last one of a click id given
        twice), refresh the click rollup of their messages and note their contacts for scoring,
        in one transaction."""
        if not verdicts:
            return
        latest = {cid: (v, final) for cid, v, final in verdicts}
        rows = [
            (cid, v.verdict, v.score, orjson.dumps(list(v.reasons)).decode(), v.version, final)
            for cid, (v, final) in latest.items()
        ]
        postgres = is_postgres(self.engine)
        with self.engine.begin() as conn:
            previous = verdicts_of(conn, list(latest))
            if postgres:
                cols = list(zip(*rows, strict=True))
                found = conn.exec_driver_sql(SAVE_VERDICTS_PG, tuple(list(col) for col in cols))
            else:
                conn.exec_driver_sql(VERDICT_UPDATES_TABLE)
                conn.exec_driver_sql(VERDICT_UPDATES_FILL, rows)
                found = conn.exec_driver_sql(SAVE_VERDICTS_SQLITE)
            changed = found.all()
            if not postgres:
                conn.exec_driver_sql(VERDICT_UPDATES_EMPTY)
            refresh_click_rollup(conn, {m for m, _ in changed})
            mark_dirty(conn, (c for _, c in changed))
            # click.created once final, click.reclassified when a verdict changed class.
            click_events(conn, list(latest), now_us(), previous=previous)

    def count_clicks(self) -> int:
        """Return the number of stored requests on tokens (clicks and probes)."""
        with self.engine.connect() as conn:
            return int(conn.execute(CLICK_COUNT).scalar_one())


def _stored_request(r: Any) -> StoredRequest:
    # r: a row of `REQUESTS_SQL` (JSON columns as text).
    (row_id, click_id, campaign_id, message_id, contact_id, link_id, at_us, method, ip,
     user_agent, headers, verdict, score, reasons, version, final, sent_us, delivered_us) = r  # fmt: skip
    stored = None
    if verdict is not None:
        stored = Verdict(
            verdict, int(score or 0), tuple(orjson.loads(reasons) or ()) if reasons else (),
            version or "",
        )  # fmt: skip
    return StoredRequest(
        click_id, campaign_id, message_id, contact_id, link_id, at_us, method, ip, user_agent,
        dict(orjson.loads(headers) or {}), sent_us, delivered_us, stored, row_id, bool(final),
    )  # fmt: skip
