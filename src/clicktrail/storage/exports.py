"""Export queries: click events and messages of a workspace, read in keyset-paginated chunks.

Each chunk is one short query (``WHERE id > :last ORDER BY id LIMIT :chunk``) on its own
connection, on SQLite and PostgreSQL alike. Why not one server-side cursor: an HTTP export is
as slow as its client, and a cursor would pin a pooled connection and an open transaction (and
on SQLite a read snapshot that stops the WAL from being checkpointed) for all that time. Keyset
pages cost one index seek each and hold nothing between chunks; rows arriving meanwhile are
included when their id is past the current page, which is what a tailing export wants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.services.exports import ClickEvent, ConversionCredit, MessageRecord
from clicktrail.storage import tables as t


def _narrow(
    q: sa.Select[Any],
    campaign: tuple[Any, int | None],
    time_range: tuple[Any, int | None, int | None],
    equal: tuple[Any, str | None],
) -> sa.Select[Any]:
    """Add the filters that were given: campaign, [since, until) on a time column, one value."""
    column, campaign_id = campaign
    if campaign_id is not None:
        q = q.where(column == campaign_id)
    column, since_us, until_us = time_range
    if since_us is not None:
        q = q.where(column >= since_us)
    if until_us is not None:
        q = q.where(column < until_us)
    column, value = equal
    if value is not None:
        q = q.where(column == value)
    return q


def click_events_query(
    workspace_id: int,
    *,
    campaign_id: int | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    verdict: str | None = None,
) -> sa.Select[Any]:
    """Return the query of the workspace's click events with their context, by click row id
    (the caller adds the keyset condition and the limit)."""
    ck, cp, m, lk, ct, tk = t.clicks, t.campaigns, t.messages, t.links, t.contacts, t.tokens
    q = (
        sa.select(
            ck.c.id,
            ck.c.click_id,
            ck.c.at_us,
            cp.c.public_id.label("campaign_id"),
            cp.c.slug.label("campaign_slug"),
            m.c.public_id.label("message_id"),
            (lk.c.idx + 1).label("link"),
            lk.c.url.label("link_url"),
            lk.c.role.label("link_role"),
            sa.func.coalesce(tk.c.destination, lk.c.url).label("destination"),
            ct.c.external_id,
            m.c.to_phone.label("phone"),
            ck.c.method,
            ck.c.is_click,
            ck.c.verdict,
            ck.c.score,
            ck.c.reasons,
            ck.c.final,
            ck.c.ip,
            ck.c.user_agent,
        )
        .select_from(ck)
        .join(cp, cp.c.id == ck.c.campaign_id)
        .join(m, m.c.id == ck.c.message_id)
        .join(lk, lk.c.id == ck.c.link_id)
        .join(ct, ct.c.id == ck.c.contact_id)
        .outerjoin(tk, tk.c.token == ck.c.token)
        .where(cp.c.workspace_id == workspace_id)
        .order_by(ck.c.id)
    )
    return _narrow(
        q,
        (ck.c.campaign_id, campaign_id),
        (ck.c.at_us, since_us, until_us),
        (ck.c.verdict, verdict),
    )


def messages_query(
    workspace_id: int,
    *,
    campaign_id: int | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    status: str | None = None,
) -> sa.Select[Any]:
    """Return the query of the workspace's messages, by row id (the caller adds keyset and
    limit). The time range applies to `queued_us`."""
    m, cp, ct = t.messages, t.campaigns, t.contacts
    q = (
        sa.select(
            m.c.id,
            m.c.public_id.label("message_id"),
            cp.c.public_id.label("campaign_id"),
            cp.c.slug.label("campaign_slug"),
            ct.c.external_id,
            m.c.to_phone.label("phone"),
            m.c.body,
            m.c.encoding,
            m.c.segments,
            m.c.status,
            m.c.provider,
            m.c.provider_message_id,
            m.c.error_code,
            m.c.queued_us,
            m.c.sent_us,
            m.c.delivered_us,
            m.c.failed_us,
            m.c.status_us,
        )
        .select_from(m)
        .join(cp, cp.c.id == m.c.campaign_id)
        .join(ct, ct.c.id == m.c.contact_id)
        .where(cp.c.workspace_id == workspace_id)
        .order_by(m.c.id)
    )
    return _narrow(
        q, (m.c.campaign_id, campaign_id), (m.c.queued_us, since_us, until_us), (m.c.status, status)
    )


def conversion_credits_query(
    workspace_id: int,
    *,
    campaign_id: int | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
) -> sa.Select[Any]:
    """Return the query of the workspace's conversion credits with their context, by
    (conversion, model) (the caller adds the keyset condition and the limit). The time range
    applies to when the conversion occurred."""
    cc, cv, cp, m, lk, ck, ct = (t.conversion_credits, t.conversions, t.campaigns, t.messages,
                                 t.links, t.clicks, t.contacts)  # fmt: skip
    q = (
        sa.select(
            cc.c.conversion_id, cc.c.model, cv.c.public_id, cv.c.event, cv.c.occurred_us,
            cv.c.value_micros, cv.c.currency, cc.c.kind, cp.c.public_id, cp.c.slug,
            m.c.public_id, lk.c.idx + 1, ck.c.click_id, cc.c.credit, cc.c.delay_us,
            cc.c.settled, ct.c.external_id, ct.c.phone,
        )
        .select_from(cc)
        .join(cv, cv.c.id == cc.c.conversion_id)
        .outerjoin(cp, cp.c.id == cc.c.campaign_id)
        .outerjoin(m, m.c.id == cc.c.message_id)
        .outerjoin(lk, lk.c.id == cc.c.link_id)
        .outerjoin(ck, ck.c.id == cc.c.click_row)
        .outerjoin(ct, ct.c.id == cc.c.contact_id)
        .where(cc.c.workspace_id == workspace_id)
        .order_by(cc.c.conversion_id, cc.c.model)
    )  # fmt: skip
    return _narrow(
        q, (cc.c.campaign_id, campaign_id), (cv.c.occurred_us, since_us, until_us), (None, None)
    )


def conversion_credit(r: Any) -> ConversionCredit:
    """Return the `ConversionCredit` of a row of `conversion_credits_query`."""
    (_id, model, public_id, event, occurred_us, micros, currency, kind, campaign, slug, message,
     link, click_id, credit, delay_us, settled, external_id, phone) = r  # fmt: skip
    return ConversionCredit(
        public_id, event, occurred_us, None if micros is None else micros / 1_000_000, currency,
        model, kind, campaign, slug, message, link, click_id, credit,
        None if delay_us is None else delay_us / 1_000_000, bool(settled), external_id, phone,
    )  # fmt: skip


def click_event(r: Any) -> ClickEvent:
    """Return the `ClickEvent` of a row of `click_events_query`."""
    # Positional: a Row unpacks much faster than it answers 20 attribute look-ups.
    (_id, click_id, at_us, campaign_id, campaign_slug, message_id, link, link_url,
     link_role, destination, external_id, phone, method, is_click, verdict, score, reasons,
     final, ip, user_agent) = r  # fmt: skip
    if isinstance(reasons, str):
        reasons = json.loads(reasons)
    return ClickEvent(
        click_id, at_us, campaign_id, campaign_slug, message_id, link, link_url,
        link_role, destination, external_id, phone, method, bool(is_click), verdict, score,
        tuple(reasons or ()), bool(final), ip, user_agent,
    )  # fmt: skip


def message_record(r: Any) -> MessageRecord:
    """Return the `MessageRecord` of a row of `messages_query`."""
    return MessageRecord(*tuple(r)[1:])


class ExportQueries:
    """The rows of exports on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _pages(self, query: sa.Select[Any], id_col: Any, chunk: int) -> Iterator[Sequence[Any]]:
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(id_col > after).limit(chunk)).all()
            if not rows:
                return
            after = rows[-1].id
            yield rows
            if len(rows) < chunk:
                return

    def click_event_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[ClickEvent]]:
        """Yield the workspace's click events in id order, `chunk` at a time."""
        q = click_events_query(
            workspace_id, campaign_id=campaign_id, since_us=since_us, until_us=until_us
        ).where(t.messages.c.is_test.is_(sa.false()))  # test sends are never exported
        for rows in self._pages(q, t.clicks.c.id, chunk):
            yield [click_event(r) for r in rows]

    def message_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[MessageRecord]]:
        """Yield the workspace's messages in id order, `chunk` at a time."""
        q = messages_query(
            workspace_id, campaign_id=campaign_id, since_us=since_us, until_us=until_us
        ).where(t.messages.c.is_test.is_(sa.false()))  # test sends are never exported
        for rows in self._pages(q, t.messages.c.id, chunk):
            yield [message_record(r) for r in rows]

    def conversion_credit_chunks(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        chunk: int,
    ) -> Iterator[Sequence[ConversionCredit]]:
        """Yield the workspace's conversion credits by (conversion, model), `chunk` at a time."""
        cc = t.conversion_credits
        q = conversion_credits_query(
            workspace_id, campaign_id=campaign_id, since_us=since_us, until_us=until_us
        )
        after: tuple[int, str] = (0, "")
        while True:
            key = sa.tuple_(cc.c.conversion_id, cc.c.model) > sa.tuple_(*after)
            with self.engine.connect() as conn:
                rows = conn.execute(q.where(key).limit(chunk)).all()
            if not rows:
                return
            after = (rows[-1][0], rows[-1][1])
            yield [conversion_credit(r) for r in rows]
            if len(rows) < chunk:
                return
