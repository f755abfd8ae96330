"""The event outbox on SQL (`events`, `event_cursors`, migration 0020).

Writers: the storage modules of the facts call `append_events` (and, for clicks,
`click_events`) inside their own transaction, so an event exists exactly when its fact does.
Events are written only for workspaces that listen (`subscribers`): those with at least one
webhook endpoint, and those with at least one enabled automation (services/automation_runs.py
reads the same rows from a cursor of its own, ``automations``). Both come from one statement
over two indexes, so a workspace nobody listens to pays one indexed read per transaction. While
a stream is configured (`stream_workspaces`, set by the composition root), its workspaces
listen too.

Readers: `events_after` returns events in commit order after a consumer's cursor. On SQLite a
single writer commits at a time, in id order. On PostgreSQL ids are taken before commit, so a
transaction can commit an id below one already read; each event therefore records its
transaction's id (`txid`), and readers take only events whose transaction is older than the
oldest of this database's transactions still running (`pg_horizon`), in (txid, id) order: that
set can no longer grow below the cursor, so no event is ever skipped. A long transaction that
writes to this database (an import, say) holds events back until it ends.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from clicktrail.domain import events as ev
from clicktrail.domain.events import NewEvent, StoredEvent
from clicktrail.domain.ids import new_public_id
from clicktrail.storage import tables as t
from clicktrail.storage.sql import chunks, insert_ignore, is_postgres

_ev, _cur, _ep, _au = t.events, t.event_cursors, t.webhook_endpoints, t.automations

EVENT_PREFIX = "evt"
# Workspaces that listen: any webhook endpoint, enabled or not (a disabled endpoint's events
# can be replayed once it is enabled again), or any enabled automation (a disabled one's runs
# are cancelled when due; it starts none). UNION: distinct, one round trip.
SUBSCRIBERS = sa.union(
    sa.select(_ep.c.workspace_id), sa.select(_au.c.workspace_id).where(_au.c.enabled)
)
# The writing transaction's id (PostgreSQL 13+) and the oldest one still running.
PG_TXID: sa.ColumnClause[int] = sa.literal_column("pg_current_xact_id()::text::bigint")
# The next transaction id (xid8), then the ids of this database's transactions running now
# (32-bit xids, read after it: see `pg_horizon`).
PG_NEXT_XID = sa.text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
PG_RUNNING_XIDS = sa.text(
    "SELECT backend_xid::text::bigint FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_xid IS NOT NULL"
)

# A click as events show it: with its message, contact, link and campaign, its verdict now.
_c, _m, _ct, _l, _cp = t.clicks, t.messages, t.contacts, t.links, t.campaigns
CLICK_ROWS = (
    sa.select(
        _cp.c.workspace_id, _c.c.click_id, _c.c.at_us, _c.c.is_click, _c.c.verdict, _c.c.score,
        _c.c.reasons, _c.c.final, _cp.c.slug.label("campaign"), _m.c.public_id.label("message"),
        _ct.c.phone, _ct.c.external_id, _l.c.idx.label("link_index"), _l.c.url.label("link_url"),
    )
    .select_from(_c)
    .join(_cp, _cp.c.id == _c.c.campaign_id)
    .join(_m, _m.c.id == _c.c.message_id)
    .join(_ct, _ct.c.id == _c.c.contact_id)
    .join(_l, _l.c.id == _c.c.link_id)
)  # fmt: skip


# Engines whose writers write events for streamed workspaces too: the slugs, or None for all.
_STREAMED: weakref.WeakKeyDictionary[sa.Engine, frozenset[str] | None] = weakref.WeakKeyDictionary()


def stream_workspaces(engine: sa.Engine, slugs: frozenset[str] | None) -> None:
    """Write events on `engine` for the workspaces of `slugs` (None: every workspace) whether
    or not they have webhook endpoints: a stream-out publishes them (services/streams.py)."""
    _STREAMED[engine] = slugs


def subscribers(conn: sa.Connection) -> set[int]:
    """Return the ids of the workspaces events are written for."""
    ids = set(conn.execute(SUBSCRIBERS).scalars())
    if conn.engine in _STREAMED:
        slugs, ws = _STREAMED[conn.engine], t.workspaces
        q = sa.select(ws.c.id) if slugs is None else sa.select(ws.c.id).where(ws.c.slug.in_(slugs))
        ids.update(conn.execute(q).scalars())
    return ids


def append_events(conn: sa.Connection, new: Sequence[NewEvent], now_us: int) -> int:
    """Write `new` events inside the caller's transaction (one already written under the same
    key is skipped); return how many were given."""
    if not new:
        return 0
    stmt = insert_ignore(conn, _ev)
    if is_postgres(conn):
        stmt = stmt.values(txid=PG_TXID)
    conn.execute(
        stmt,
        [
            {"public_id": new_public_id(EVENT_PREFIX), "workspace_id": x.workspace_id,
             "type": x.type, "key": x.key, "occurred_us": x.occurred_us, "created_us": now_us,
             "payload": x.payload}
            for x in new
        ],
    )  # fmt: skip
    return len(new)


def click_data(r: Any) -> dict[str, Any]:
    """Return the `data` of a click event from a `CLICK_ROWS` row."""
    reasons = r.reasons if not isinstance(r.reasons, str) else orjson.loads(r.reasons)
    return {
        "click_id": r.click_id, "occurred_at": ev.iso(r.at_us), "campaign": r.campaign,
        "message": r.message, "contact": {"phone": r.phone, "external_id": r.external_id},
        "link": {"index": r.link_index, "url": r.link_url}, "is_click": bool(r.is_click),
        "verdict": ev.verdict_data(r.verdict, reasons or (), r.score, bool(r.final)),
    }  # fmt: skip


def click_events(
    conn: sa.Connection,
    click_ids: Iterable[str],
    now_us: int,
    *,
    previous: dict[str, str | None] | None = None,
) -> int:
    """Write the events of clicks just stored or given a verdict, inside the caller's
    transaction: `click.created` with the verdict as it is now (provisional, or final: the
    key tells them apart) and, where `previous` verdicts are given, `click.reclassified` for a
    click whose verdict changed between counted and bot. Return how many were written."""
    listening = subscribers(conn)
    if not listening:
        return 0
    new: list[NewEvent] = []
    for chunk in chunks(sorted(set(click_ids))):
        q = CLICK_ROWS.where(_c.c.click_id.in_(chunk), _cp.c.workspace_id.in_(listening))
        for r in conn.execute(q):
            data = click_data(r)
            if previous is None or r.final:
                stage = "final" if r.final else "provisional"
                new.append(ev.event(r.workspace_id, ev.CLICK_CREATED, f"{r.click_id}/{stage}",
                                    r.at_us, data))  # fmt: skip
            if previous is not None and r.click_id in previous:
                was = previous[r.click_id]
                if was is not None and ev.counts(was) != ev.counts(r.verdict):
                    new.append(ev.event(r.workspace_id, ev.CLICK_RECLASSIFIED,
                                        f"{r.click_id}/{now_us}", now_us,
                                        {**data, "previous_verdict": was}))  # fmt: skip
    return append_events(conn, new, now_us)


def verdicts_of(conn: sa.Connection, click_ids: Sequence[str]) -> dict[str, str | None]:
    """Return the stored verdict of each click (for `click_events`' reclassifications), or an
    empty dict when no workspace listens."""
    if not subscribers(conn):
        return {}
    out: dict[str, str | None] = {}
    for chunk in chunks(sorted(set(click_ids))):
        q = sa.select(_c.c.click_id, _c.c.verdict).where(_c.c.click_id.in_(chunk))
        out.update(dict(conn.execute(q).all()))
    return out


def pg_horizon(conn: sa.Connection) -> int:
    """Return the transaction id (xid8) below which every transaction of this database has
    ended, on PostgreSQL; call it first in its transaction, before reading events.

    The next id is read first, then the transactions of this database running now (their
    32-bit xids, widened to xid8 below the next id). A transaction below the horizon had ended
    when this ran, so the next statement's snapshot sees its events, and nothing can add an
    event below the horizon any more. Other databases' transactions (a bench, another
    application on the server) do not hold it back, as the server-wide `pg_snapshot_xmin`
    would. Every connection of clicktrail uses one role, which sees its sessions' xids.
    """
    next_xid = int(conn.execute(PG_NEXT_XID).scalar_one())
    running = [int(x) for x in conn.execute(PG_RUNNING_XIDS).scalars()]
    return min([next_xid] + [next_xid - ((next_xid - x) % 2**32) for x in running])


class EventQueries:
    """The outbox's readers on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Return up to `limit` events after `consumer`'s cursor, in commit order (only events
        no running transaction can precede any more)."""
        with self.engine.connect() as conn:
            horizon = pg_horizon(conn) if is_postgres(conn) else None
            cur = conn.execute(
                sa.select(_cur.c.txid, _cur.c.event_id).where(_cur.c.consumer == consumer)
            ).first()
            txid, after = (cur.txid, cur.event_id) if cur is not None else (0, 0)
            q = (
                sa.select(_ev.c.id, _ev.c.txid, _ev.c.public_id, _ev.c.workspace_id, _ev.c.type,
                          _ev.c.occurred_us, _ev.c.payload)
                .where(sa.tuple_(_ev.c.txid, _ev.c.id) > sa.tuple_(sa.literal(txid), sa.literal(after)))
                .order_by(_ev.c.txid, _ev.c.id)
                .limit(limit)
            )  # fmt: skip
            if horizon is not None:
                q = q.where(_ev.c.txid < horizon)
            return [StoredEvent(*r) for r in conn.execute(q)]

    def move_cursor(
        self, conn: sa.Connection, consumer: str, last: StoredEvent, now_us: int
    ) -> None:
        """Move `consumer`'s cursor to `last` inside the caller's transaction (never back)."""
        row = {"consumer": consumer, "txid": last.txid, "event_id": last.id, "updated_us": now_us}
        moved = conn.execute(
            _cur.update()
            .where(_cur.c.consumer == consumer,
                   sa.tuple_(_cur.c.txid, _cur.c.event_id) < sa.tuple_(sa.literal(last.txid), sa.literal(last.id)))
            .values(txid=last.txid, event_id=last.id, updated_us=now_us)
        ).rowcount  # fmt: skip
        if not moved:
            conn.execute(insert_ignore(conn, _cur), [row])


# A message as events show it.
MESSAGE_ROWS = (
    sa.select(_m.c.id, _m.c.public_id, _m.c.status, _m.c.error_code, _m.c.error_message,
              _m.c.segments, _cp.c.slug.label("campaign"), _ct.c.phone, _ct.c.external_id)
    .select_from(_m)
    .join(_cp, _cp.c.id == _m.c.campaign_id)
    .join(_ct, _ct.c.id == _m.c.contact_id)
)  # fmt: skip


def message_events(
    conn: sa.Connection, workspace_id: int, changed: dict[int, tuple[str, int]], now_us: int
) -> int:
    """Write `message.delivered` / `message.failed` for messages whose status just became
    delivered, or failed or undelivered (`changed`: message id → (status, at_us)), inside the
    caller's transaction; return how many were written."""
    wanted = {
        mid: x for mid, x in changed.items() if x[0] in ("delivered", "failed", "undelivered")
    }
    if not wanted or workspace_id not in subscribers(conn):
        return 0
    new: list[NewEvent] = []
    for chunk in chunks(sorted(wanted)):
        for r in conn.execute(MESSAGE_ROWS.where(_m.c.id.in_(chunk))):
            status, at_us = wanted[r.id]
            type_ = ev.MESSAGE_DELIVERED if status == "delivered" else ev.MESSAGE_FAILED
            data = {
                "message": r.public_id, "campaign": r.campaign, "status": status,
                "occurred_at": ev.iso(at_us), "segments": r.segments,
                "contact": {"phone": r.phone, "external_id": r.external_id},
                "error_code": r.error_code, "error_message": r.error_message,
            }  # fmt: skip
            new.append(ev.event(workspace_id, type_, f"{r.public_id}/{status}", at_us, data))
    return append_events(conn, new, now_us)
