"""Conversions on SQL: resolving click ids and contacts, storing conversions once per dedup
key, listing them, the duplicate modes of events and the rejected log.

Implements `services.conversions.ConversionStore` on `conversions`, `conversion_events` and
`rejected_conversions` (reading `clicks`, `click_inbox`, `campaigns` and `contacts`). A batch
is stored with one INSERT … ON CONFLICT DO NOTHING RETURNING per 500 rows: the rows whose key
was new come back, so concurrent writers of the same conversion (the same postback a hundred
times at once) store it once, on SQLite and PostgreSQL alike, with no lock of our own. Each
public method is one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from clicktrail.domain import events
from clicktrail.domain.clicks import click_from_row
from clicktrail.services.conversions import (
    ClickRef,
    Conversion,
    ConversionFilter,
    NewConversion,
    Rejection,
    Stored,
)
from clicktrail.storage import tables as t
from clicktrail.storage.engagement import mark_dirty
from clicktrail.storage.events import append_events, subscribers
from clicktrail.storage.inbox import inbox_lines
from clicktrail.storage.sql import chunks, is_postgres, upsert

_cv, _ev, _rj = t.conversions, t.conversion_events, t.rejected_conversions
_ck, _cp, _ct, _ms, _lk, _ib = t.clicks, t.campaigns, t.contacts, t.messages, t.links, t.click_inbox
_WS: sa.BindParameter[Any] = sa.bindparam("ws")
ROWS_PER_INSERT = 500  # 16 columns each: well under both databases' parameter limits
# The columns a new conversion fills, in `_params` order.
INSERT_COLUMNS = (
    "public_id", "workspace_id", "event", "value_micros", "currency", "occurred_us",
    "received_us", "click_id", "contact_id", "message_id", "campaign_id", "link_id", "txn",
    "source", "dedup_key", "meta",
)  # fmt: skip
# Inbox rows searched for a recent click id: the newest ones (a batch each; the jobs process
# empties the inbox every second, so a click of minutes ago is in these or in `clicks`).
INBOX_ROWS_SEARCHED = 500
REJECTED_KEPT = 10_000  # rejected-log rows kept per workspace (and for no workspace)

# The workspace's clicks among some click ids.
CLICKS_BY_ID = (
    sa.select(_ck.c.click_id, _ck.c.contact_id, _ck.c.message_id, _ck.c.campaign_id,
              _ck.c.link_id, _ck.c.at_us)
    .join(_cp, _cp.c.id == _ck.c.campaign_id)
    .where(_cp.c.workspace_id == _WS, _ck.c.click_id.in_(sa.bindparam("ids", expanding=True)))
)  # fmt: skip
# The newest inbox rows holding a spool line that starts with a click id (`pattern`).
INBOX_LINES = sa.select(_ib.c.raw).where(
    _ib.c.seq
    >= sa.select(sa.func.coalesce(sa.func.max(_ib.c.seq), 0)).scalar_subquery()
    - INBOX_ROWS_SEARCHED
)
WORKSPACE_CAMPAIGNS = sa.select(_cp.c.id).where(
    _cp.c.workspace_id == _WS, _cp.c.id.in_(sa.bindparam("ids", expanding=True))
)
# Contacts by external id (several may share one: the first stored wins) and by phone.
CONTACTS_BY_EXTERNAL_ID = (
    sa.select(_ct.c.external_id, sa.func.min(_ct.c.id))
    .where(_ct.c.workspace_id == _WS, _ct.c.external_id.in_(sa.bindparam("refs", expanding=True)))
    .group_by(_ct.c.external_id)
)  # fmt: skip
CONTACTS_BY_PHONE = sa.select(_ct.c.phone, _ct.c.id).where(
    _ct.c.workspace_id == _WS, _ct.c.phone.in_(sa.bindparam("refs", expanding=True))
)
MODES = sa.select(_ev.c.event, _ev.c.duplicate_mode).where(
    _ev.c.workspace_id == _WS, _ev.c.event.in_(sa.bindparam("events", expanding=True))
)
ALL_MODES = (
    sa.select(_ev.c.event, _ev.c.duplicate_mode, _ev.c.updated_us)
    .where(_ev.c.workspace_id == _WS)
    .order_by(_ev.c.event)
)
# The stored conversions holding some dedup keys.
HOLDERS = sa.select(_cv.c.dedup_key, _cv.c.public_id, _cv.c.value_micros, _cv.c.currency).where(
    _cv.c.workspace_id == _WS, _cv.c.dedup_key.in_(sa.bindparam("keys", expanding=True))
)
REPLACE_VALUE = (
    _cv.update()
    .where(_cv.c.workspace_id == _WS, _cv.c.dedup_key == sa.bindparam("key"))
    .values(value_micros=sa.bindparam("v"), currency=sa.bindparam("cur"),
            updated_us=sa.bindparam("now"))
)  # fmt: skip
# Conversions as shown, with what they resolved to (pages and lookups add their conditions).
SHOWN = (
    sa.select(
        _cv.c.public_id, _cv.c.event, _cv.c.value_micros, _cv.c.currency, _cv.c.occurred_us,
        _cv.c.received_us, _cv.c.click_id, _ct.c.external_id, _ct.c.phone, _cp.c.slug,
        _ms.c.public_id, _lk.c.idx, _cv.c.txn, _cv.c.source, _cv.c.meta, _cv.c.updated_us,
    )
    .select_from(
        _cv.outerjoin(_ct, _ct.c.id == _cv.c.contact_id)
        .outerjoin(_cp, _cp.c.id == _cv.c.campaign_id)
        .outerjoin(_ms, _ms.c.id == _cv.c.message_id)
        .outerjoin(_lk, _lk.c.id == _cv.c.link_id)
    )
    .where(_cv.c.workspace_id == _WS)
)  # fmt: skip
CONVERSION_ID = sa.select(_cv.c.id).where(
    _cv.c.workspace_id == _WS, _cv.c.public_id == sa.bindparam("after")
)
# The rejected log: a workspace's page (newest first), and trimming to the newest rows.
_RJ_WS = _rj.c.workspace_id.is_not_distinct_from(_WS)
REJECTED = (
    sa.select(_rj.c.id, _rj.c.at_us, _rj.c.source, _rj.c.reason, _rj.c.field, _rj.c.detail,
              _rj.c.query, _rj.c.ip)
    .where(_RJ_WS)
    .order_by(_rj.c.id.desc())
)  # fmt: skip
REJECTED_CUTOFF = (
    sa.select(_rj.c.id).where(_RJ_WS).order_by(_rj.c.id.desc())
    .offset(sa.bindparam("kept")).limit(1)
)  # fmt: skip
TRIM_REJECTED = _rj.delete().where(_RJ_WS, _rj.c.id <= sa.bindparam("cutoff"))


@functools.cache
def insert_sql(rows: int, postgres: bool) -> str:
    """The INSERT of `rows` new conversions that skips taken dedup keys and returns the keys it
    stored: driver SQL with positional placeholders, built once per size. (SQLAlchemy compiled
    a 500-row multi-VALUES statement afresh each time: 80 % of a batch's cost.)"""
    p = "%s" if postgres else "?"
    one = "(" + ", ".join([p] * (len(INSERT_COLUMNS) - 1) + [f"{p}::json" if postgres else p]) + ")"
    return (
        f"INSERT INTO conversions ({', '.join(INSERT_COLUMNS)}) VALUES "  # our own names
        + ", ".join([one] * rows)
        + " ON CONFLICT DO NOTHING RETURNING dedup_key"
    )


def _params(rows: Sequence[NewConversion]) -> tuple[Any, ...]:
    out: list[Any] = []
    for r in rows:
        out += (
            r.public_id, r.workspace_id, r.event, r.value_micros, r.currency, r.occurred_us,
            r.received_us, r.click_id, r.contact_id, r.message_id, r.campaign_id, r.link_id,
            r.txn, r.source, r.dedup_key,
            None if r.metadata is None else orjson.dumps(r.metadata).decode(),
        )  # fmt: skip
    return tuple(out)


def _conversion(r: Any) -> Conversion:
    (public_id, event, micros, currency, occurred, received, click_id, external_id, phone, slug,
     message, idx, txn, source, meta, updated) = r  # fmt: skip
    return Conversion(
        public_id, event, micros, currency, occurred, received, click_id, external_id, phone,
        slug, message, None if idx is None else idx + 1, txn, source, meta, updated,
    )  # fmt: skip


def _conversion_events(conn: sa.Connection, ws: int, public_ids: list[str], now_us: int) -> None:
    # conversion.created for the conversions just stored, in their transaction.
    new = []
    for chunk in chunks(public_ids):
        for r in conn.execute(SHOWN.where(_cv.c.public_id.in_(chunk)), {"ws": ws}):
            c = _conversion(tuple(r))
            data = {
                "id": c.public_id, "event": c.event, "currency": c.currency,
                "value": c.value,
                "occurred_at": events.iso(c.occurred_us), "click_id": c.click_id,
                "contact": {"phone": c.contact_phone, "external_id": c.contact_external_id},
                "campaign": c.campaign, "message": c.message, "link": c.link, "txn": c.txn,
                "source": c.source, "metadata": c.metadata,
            }  # fmt: skip
            new.append(
                events.event(ws, events.CONVERSION_CREATED, c.public_id, c.occurred_us, data)
            )
    append_events(conn, new, now_us)


class ConversionQueries:
    """Conversions on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, rejected_kept: int = REJECTED_KEPT) -> None:
        self.engine = engine
        self.rejected_kept = rejected_kept

    def clicks_by_id(self, workspace_id: int, click_ids: Sequence[str]) -> dict[str, ClickRef]:
        """Return the workspace's stored clicks with these ids (others are absent)."""
        out: dict[str, ClickRef] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(click_ids):
                for r in conn.execute(CLICKS_BY_ID, {"ws": workspace_id, "ids": list(chunk)}):
                    out[r[0]] = ClickRef(*r)
        return out

    def clicks_in_inbox(self, workspace_id: int, click_ids: Sequence[str]) -> dict[str, ClickRef]:
        """Return the workspace's clicks with these ids still in the click inbox (among its
        newest `INBOX_ROWS_SEARCHED` rows)."""
        found: dict[str, ClickRef] = {}
        with self.engine.connect() as conn:
            for cid in click_ids:
                head = f'["{cid}"'
                q = INBOX_LINES.where(_ib.c.raw.contains(head, autoescape=True)).limit(1)
                raw = conn.execute(q).scalar()
                for line in inbox_lines(raw or ""):
                    if line.startswith(head):
                        c = click_from_row(orjson.loads(line))
                        found[cid] = ClickRef(
                            c.click_id, c.contact_id, c.message_id, c.campaign_id, c.link_id,
                            c.at_us,
                        )  # fmt: skip
                        break
            campaigns = {c.campaign_id for c in found.values()}
            if campaigns:
                ours = set(
                    conn.execute(WORKSPACE_CAMPAIGNS, {"ws": workspace_id, "ids": sorted(campaigns)})
                    .scalars()
                )  # fmt: skip
                found = {k: c for k, c in found.items() if c.campaign_id in ours}
        return found

    def contacts_by_ref(
        self, workspace_id: int, external_ids: Sequence[str], phones: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Return the workspace's contact ids by external id (the first stored of those sharing
        one) and by phone (E.164)."""
        by_ext: dict[str, int] = {}
        by_phone: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(external_ids):
                params = {"ws": workspace_id, "refs": list(chunk)}
                by_ext.update((k, int(v)) for k, v in conn.execute(CONTACTS_BY_EXTERNAL_ID, params))
            for chunk in chunks(phones):
                params = {"ws": workspace_id, "refs": list(chunk)}
                by_phone.update((k, int(v)) for k, v in conn.execute(CONTACTS_BY_PHONE, params))
        return by_ext, by_phone

    def duplicate_modes(self, workspace_id: int, events: Sequence[str]) -> dict[str, str]:
        """Return the duplicate mode of those of `events` that have one set."""
        if not events:
            return {}
        with self.engine.connect() as conn:
            return dict(conn.execute(MODES, {"ws": workspace_id, "events": list(events)}).all())

    def put_conversions(
        self, rows: Sequence[NewConversion], replace: set[str], now_us: int
    ) -> dict[str, Stored]:
        """Store the rows whose dedup key is new, in one transaction; a row whose key is taken
        replaces the stored value and currency when its key is in `replace` and they differ.
        Return what happened, by dedup key (rows share one workspace, keys are distinct)."""
        if not rows:
            return {}
        ws = rows[0].workspace_id
        out: dict[str, Stored] = {}
        with self.engine.begin() as conn:
            postgres = is_postgres(conn)
            for chunk in chunks(rows, ROWS_PER_INSERT):
                sql = insert_sql(len(chunk), postgres)
                new = {k for (k,) in conn.exec_driver_sql(sql, _params(chunk))}
                out.update((r.dedup_key, Stored(r.public_id, "inserted")) for r in chunk
                           if r.dedup_key in new)  # fmt: skip
                mark_dirty(conn, (r.contact_id for r in chunk if r.dedup_key in new))
            taken = {r.dedup_key: r for r in rows if r.dedup_key not in out}
            for keys in chunks(list(taken)):
                for key, public_id, micros, currency in conn.execute(
                    HOLDERS, {"ws": ws, "keys": list(keys)}
                ):
                    r = taken[key]
                    state = "duplicate"
                    if key in replace and (micros, currency) != (r.value_micros, r.currency):
                        conn.execute(REPLACE_VALUE, {"ws": ws, "key": key, "v": r.value_micros,
                                                     "cur": r.currency, "now": now_us})  # fmt: skip
                        state = "replaced"
                    out[key] = Stored(public_id, state)
            inserted = [x.public_id for x in out.values() if x.state == "inserted"]
            if inserted and ws in subscribers(conn):
                _conversion_events(conn, ws, inserted, now_us)
        return out

    def conversion(self, workspace_id: int, public_id: str) -> Conversion | None:
        """Return the workspace's conversion with this public id (None: no such one)."""
        q = SHOWN.where(_cv.c.public_id == sa.bindparam("id"))
        with self.engine.connect() as conn:
            r = conn.execute(q, {"ws": workspace_id, "id": public_id}).first()
        return None if r is None else _conversion(r)

    def conversions_page(
        self, workspace_id: int, where: ConversionFilter, after: str | None, limit: int
    ) -> list[Conversion]:
        """Return up to `limit` conversions in the order they were stored, after the one with
        public id `after` (None: from the first)."""
        q = SHOWN
        if after is not None:
            q = q.where(_cv.c.id > CONVERSION_ID.scalar_subquery())
        if where.event is not None:
            q = q.where(_cv.c.event == where.event)
        if where.campaign_id is not None:
            q = q.where(_cv.c.campaign_id == where.campaign_id)
        if where.source is not None:
            q = q.where(_cv.c.source == where.source)
        if where.since_us is not None:
            q = q.where(_cv.c.occurred_us >= where.since_us)
        if where.until_us is not None:
            q = q.where(_cv.c.occurred_us < where.until_us)
        q = q.order_by(_cv.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_conversion(r) for r in conn.execute(q, {"ws": workspace_id, "after": after})]

    def set_duplicate_mode(self, workspace_id: int, event: str, mode: str, now_us: int) -> None:
        """Set an event's duplicate mode."""
        values = {"workspace_id": workspace_id, "event": event, "duplicate_mode": mode,
                  "updated_us": now_us}  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(
                upsert(conn, _ev, values, [_ev.c.workspace_id, _ev.c.event],
                       {"duplicate_mode": mode, "updated_us": now_us})
            )  # fmt: skip

    def event_modes(self, workspace_id: int) -> list[tuple[str, str, int]]:
        """Return (event, mode, updated µs) of every event with a mode set, by name."""
        with self.engine.connect() as conn:
            return [(e, m, int(u)) for e, m, u in conn.execute(ALL_MODES, {"ws": workspace_id})]

    def record_rejection(self, rejection: Rejection) -> None:
        """Add a refusal to the rejected log and drop its workspace's rows beyond the newest
        `rejected_kept` (`REJECTED_KEPT`)."""
        r = rejection
        with self.engine.begin() as conn:
            conn.execute(
                _rj.insert(),
                {"workspace_id": r.workspace_id, "at_us": r.at_us, "source": r.source,
                 "reason": r.reason, "field": r.field, "detail": r.detail, "query": r.query,
                 "ip": r.ip},
            )  # fmt: skip
            cutoff = conn.execute(
                REJECTED_CUTOFF, {"ws": r.workspace_id, "kept": self.rejected_kept}
            ).scalar()
            if cutoff is not None:
                conn.execute(TRIM_REJECTED, {"ws": r.workspace_id, "cutoff": cutoff})

    def rejections_page(
        self, workspace_id: int | None, before: int | None, limit: int
    ) -> list[Rejection]:
        """Return up to `limit` refusals of the workspace (None: those naming none), newest
        first, before the row `before` (None: from the newest)."""
        q = REJECTED if before is None else REJECTED.where(_rj.c.id < before)
        with self.engine.connect() as conn:
            return [
                Rejection(workspace_id, at, source, reason, field, detail, query, ip, int(row_id))
                for row_id, at, source, reason, field, detail, query, ip in conn.execute(
                    q.limit(limit), {"ws": workspace_id}
                )
            ]
