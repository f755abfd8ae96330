"""Segments on SQL: stored segments and static members, and a segment's membership as SQL —
its size, its members in pages (exports, a campaign's audience).

Implements `services.segments.SegmentStore` on `segments`, `segment_members`, `contacts` and
`contact_engagement`. `member_where` is the one translation of a `domain.segments.SegmentQuery`
to SQL: opted-out contacts are left out unless the query asks for them alone; a score band is a
range of `ix_contact_engagement_band`; "clicked campaign X" reads the click rollup. Each public
method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Contact
from clicktrail.domain.segments import Segment, SegmentQuery, parse_filter
from clicktrail.storage import tables as t
from clicktrail.storage.contacts import contact_from_row
from clicktrail.storage.sql import chunks, insert_ignore

_sg, _sm, _c, _ce = t.segments, t.segment_members, t.contacts, t.contact_engagement
_mc, _m, _cp = t.message_clicks, t.messages, t.campaigns
COUNTED_ENGAGEMENT_CLICK = 4  # `message_clicks.flags` bit (storage/rollup.py)

SEGMENT_BY_REF = sa.select(_sg).where(
    _sg.c.workspace_id == sa.bindparam("ws"),
    sa.or_(_sg.c.slug == sa.bindparam("ref"), _sg.c.public_id == sa.bindparam("ref")),
)
SEGMENTS = (
    sa.select(_sg)
    .where(_sg.c.workspace_id == sa.bindparam("ws"))
    .order_by(sa.not_(_sg.c.builtin), _sg.c.slug)
)
DELETE_MEMBERS = _sm.delete().where(_sm.c.segment_id == sa.bindparam("id"))
DELETE_SEGMENT = _sg.delete().where(_sg.c.id == sa.bindparam("id"))
REMOVE_MEMBERS = _sm.delete().where(
    _sm.c.segment_id == sa.bindparam("id"),
    _sm.c.contact_id.in_(sa.bindparam("ids", expanding=True)),
)
# Campaigns not yet sent (or being sent) whose audience is the segment.
CAMPAIGNS_USING = sa.select(_cp.c.slug).where(
    _cp.c.segment_id == sa.bindparam("id"), _cp.c.status.in_(("draft", "sending"))
)
CONTACTS_BY_REF = sa.select(_c.c.id, _c.c.phone, _c.c.external_id).where(
    _c.c.workspace_id == sa.bindparam("ws"),
    sa.or_(
        _c.c.phone.in_(sa.bindparam("refs", expanding=True)),
        _c.c.external_id.in_(sa.bindparam("refs", expanding=True)),
    ),
)


def opted_out_ids(workspace_id: int) -> Any:
    """The ids of the workspace's opted-out contacts (a range of ix_contacts_segments)."""
    return sa.select(_c.c.id).where(
        _c.c.workspace_id == workspace_id, _c.c.opted_out_us.is_not(None)
    )


def segment_from_row(r: Any) -> Segment:
    """Return the segment of a `segments` row."""
    f = None if r.filter is None else parse_filter(r.filter)
    return Segment(
        int(r.id), r.public_id, int(r.workspace_id), r.slug, r.name, r.kind, f, bool(r.builtin),
        int(r.created_us), int(r.updated_us),
    )  # fmt: skip


def _engagement_parts(q: SegmentQuery) -> tuple[list[Any], list[Any]]:
    """(conditions that need a kept score row, conditions a contact without one meets)."""
    e = _ce.c
    needs_row: list[Any] = []
    no_row_ok: list[Any] = []
    if q.key_min is not None:
        needs_row.append(e.score_key >= q.key_min)
        if q.key_below is not None:  # a range of the band index (a NULL key is below key_min)
            needs_row.append(e.score_key < q.key_below)
    elif q.key_below is not None:
        no_row_ok.append(sa.or_(e.score_key.is_(None), e.score_key < q.key_below))
    if q.clicked is True:
        needs_row.append(e.clicks > 0)
    elif q.clicked is False:
        no_row_ok.append(sa.or_(e.clicks.is_(None), e.clicks == 0))
    if q.converted is True:
        needs_row.append(e.conversions > 0)
    elif q.converted is False:
        no_row_ok.append(sa.or_(e.conversions.is_(None), e.conversions == 0))
    if q.no_click_since_us is not None:
        no_row_ok.append(sa.or_(e.last_click_us.is_(None), e.last_click_us < q.no_click_since_us))
    return needs_row, no_row_ok


def _contact_parts(q: SegmentQuery) -> list[Any]:
    c = _c.c
    where: list[Any] = [
        c.workspace_id == q.workspace_id,
        c.opted_out_us.is_(None) if q.opted_in else c.opted_out_us.is_not(None),
    ]
    if q.static_segment_id is not None:
        where.append(
            c.id.in_(sa.select(_sm.c.contact_id).where(_sm.c.segment_id == q.static_segment_id))
        )
    if q.clicked_campaign_id is not None:
        clicked = (
            sa.select(_m.c.contact_id)
            .select_from(_mc.join(_m, _m.c.id == _mc.c.message_id))
            .where(
                _mc.c.campaign_id == q.clicked_campaign_id,
                _mc.c.flags.op("&")(COUNTED_ENGAGEMENT_CLICK) != 0,
            )
        )
        where.append(c.id.in_(clicked))
    if q.country:
        where.append(c.country.in_(q.country))
    for name, values in q.attributes:
        where.append(c.attributes[name].as_string().in_(values))
    return where


def member_where(q: SegmentQuery) -> tuple[Any, list[Any]]:
    """Return (FROM clause, WHERE conditions) selecting the query's members from `contacts`
    (joined to `contact_engagement` when a condition reads it: inner when one needs a score
    row, so the band index drives it; outer otherwise)."""
    needs_row, no_row_ok = _engagement_parts(q)
    where = _contact_parts(q)
    frm: Any = _c
    if needs_row or no_row_ok:
        frm = _c.join(_ce, _ce.c.contact_id == _c.c.id, isouter=not needs_row)
        if needs_row:
            where.append(_ce.c.workspace_id == q.workspace_id)
    return frm, [*where, *needs_row, *no_row_ok]


def member_page(engine: sa.Engine, q: SegmentQuery, after_id: int, limit: int) -> list[Contact]:
    """Return up to `limit` of the query's members with id > `after_id`, by id (a page of a
    campaign's segment audience, storage/sending.py)."""
    frm, where = member_where(q)
    sel = (
        sa.select(_c).select_from(frm).where(*where, _c.c.id > after_id)
        .order_by(_c.c.id).limit(limit)
    )  # fmt: skip
    with engine.connect() as conn:
        return [contact_from_row(r) for r in conn.execute(sel)]


def _scalar(conn: sa.Connection, sel: Any) -> int:
    return int(conn.execute(sel).scalar_one())


def _count(conn: sa.Connection, q: SegmentQuery, extra: Sequence[Any] = ()) -> int:
    needs_row, no_row_ok = _engagement_parts(q)
    contact_free = (
        q.static_segment_id is None and q.clicked_campaign_id is None and not q.country
        and not q.attributes and q.opted_in
    )  # fmt: skip
    if needs_row and contact_free:
        # Only score rows can match: count them alone (a range of the band index, or a scan of
        # the narrow score table), then take away the opted-out contacts among them. Those are
        # few: the second count starts from them (`OPTED_OUT_IDS`, ix_contacts_segments) and
        # looks each one's score row up by its key. Written as a join, SQLite drives it from
        # the score rows instead and looks up every match's contact: 0.3–0.9 s for a million
        # contacts where this takes 20 ms (bench/RESULTS.md, "Segment sizes").
        conds = [_ce.c.workspace_id == q.workspace_id, *needs_row, *no_row_ok, *extra]
        scored = _scalar(conn, sa.select(sa.func.count()).select_from(_ce).where(*conds))
        opted_out = _scalar(
            conn,
            sa.select(sa.func.count())
            .select_from(_ce)
            .where(_ce.c.contact_id.in_(opted_out_ids(q.workspace_id)), *conds),
        )
        return scored - opted_out
    frm, where = member_where(q)
    return _scalar(conn, sa.select(sa.func.count()).select_from(frm).where(*where, *extra))


def count_members(conn: sa.Connection, q: SegmentQuery) -> int:
    """Return how many contacts the query selects.

    A query whose only engagement condition is one a contact without a score row meets
    (unengaged, never clicked, no click in N days, not converted) is counted as the contacts
    without it minus those with its opposite, which needs a score row: both are index counts,
    where the condition itself would read every contact's score row — unless the query also
    has an attribute condition, which reads every contact anyway: then one count over the
    contacts, less those whose score row fails a condition (NOT EXISTS). A query on score rows
    alone (no condition on the contact but opted in) counts them without joining contacts
    (`_count`).
    """
    needs_row, no_row_ok = _engagement_parts(q)
    if q.attributes and no_row_ok and not needs_row:
        # An attribute is read from every contact's JSON anyway: one pass over the contacts,
        # less those with a score row that fails a condition (an anti-join: PostgreSQL hashes
        # those rows once; SQLite looks each contact's row up by its key).
        e = _ce.c
        fails = [
            *([e.score_key >= q.key_below] if q.key_below is not None else []),
            *([e.clicks > 0] if q.clicked is False else []),
            *([e.conversions > 0] if q.converted is False else []),
            *([e.last_click_us >= q.no_click_since_us] if q.no_click_since_us is not None else []),
        ]  # fmt: skip
        failing = sa.exists().where(e.contact_id == _c.c.id, sa.or_(*fails))
        sel = sa.select(sa.func.count()).select_from(_c).where(*_contact_parts(q), ~failing)
        return _scalar(conn, sel)
    if needs_row or len(no_row_ok) != 1:
        return _count(conn, q)
    base = replace(q, key_below=None, clicked=None, converted=None, no_click_since_us=None)
    if q.no_click_since_us is not None:  # its opposite: a click since then
        recent = _count(conn, replace(base, clicked=True),
                        [_ce.c.last_click_us >= q.no_click_since_us])  # fmt: skip
        return _count(conn, base) - recent
    opposite = replace(
        base, key_min=q.key_below, clicked=True if q.clicked is False else None,
        converted=True if q.converted is False else None,
    )  # fmt: skip
    return _count(conn, base) - _count(conn, opposite)


class SegmentQueries:
    """Segments on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def ensure_segments(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert the segments `rows` (as `segments` rows) whose workspace and slug are free."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert_ignore(conn, _sg), list(rows))

    def create_segment(self, row: dict[str, Any]) -> Segment:
        """Store a new segment (a `segments` row). Raises `Conflict` if its slug is taken."""
        with self.engine.begin() as conn:
            new = conn.execute(insert_ignore(conn, _sg).returning(_sg.c.id), row).scalar()
            if new is None:
                raise Conflict(f"segment {row['slug']!r} already exists", field="slug")
            found = conn.execute(sa.select(_sg).where(_sg.c.id == new)).one()
        return segment_from_row(found)

    def find_segment(self, workspace_id: int, ref: str) -> Segment | None:
        """Return the workspace's segment whose slug or public id is `ref`."""
        with self.engine.connect() as conn:
            r = conn.execute(SEGMENT_BY_REF, {"ws": workspace_id, "ref": ref}).first()
        return None if r is None else segment_from_row(r)

    def list_segments(self, workspace_id: int) -> list[Segment]:
        """Return the workspace's segments: built-ins first, then by slug."""
        with self.engine.connect() as conn:
            return [segment_from_row(r) for r in conn.execute(SEGMENTS, {"ws": workspace_id})]

    def delete_segment(self, segment_id: int) -> None:
        """Delete a segment and its members. Raises `Conflict` naming the campaigns (not sent
        yet) whose audience it is."""
        with self.engine.begin() as conn:
            using = list(conn.execute(CAMPAIGNS_USING, {"id": segment_id}).scalars())
            if using:
                raise Conflict(
                    f"segment is the audience of campaign(s) {', '.join(sorted(using))}",
                    field="segment",
                )
            conn.execute(DELETE_MEMBERS, {"id": segment_id})
            conn.execute(DELETE_SEGMENT, {"id": segment_id})

    def contacts_by_ref(self, workspace_id: int, refs: Sequence[str]) -> dict[str, int]:
        """Return {ref: contact id} of the refs (phones or external ids) the workspace has."""
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(refs))):
                for cid, phone, ext in conn.execute(
                    CONTACTS_BY_REF, {"ws": workspace_id, "refs": list(chunk)}
                ):
                    out[phone] = int(cid)
                    if ext is not None:
                        out.setdefault(ext, int(cid))
        return out

    def change_members(
        self, segment_id: int, add: Sequence[int], remove: Sequence[int], now_us: int
    ) -> tuple[int, int]:
        """Add and remove members of a static segment in one transaction; return (added,
        removed) — members already there or already gone are not counted."""
        added = removed = 0
        with self.engine.begin() as conn:
            for chunk in chunks(sorted(set(add))):
                # RETURNING, not rowcount: an executemany's count is the driver's guess.
                res = conn.execute(
                    insert_ignore(conn, _sm).returning(_sm.c.contact_id),
                    [
                        {"segment_id": segment_id, "contact_id": c, "added_us": now_us}
                        for c in chunk
                    ],
                )
                added += len(res.all())
            for chunk in chunks(sorted(set(remove))):
                res = conn.execute(REMOVE_MEMBERS, {"id": segment_id, "ids": list(chunk)})
                removed += max(res.rowcount, 0)
            conn.execute(_sg.update().where(_sg.c.id == segment_id).values(updated_us=now_us))
        return added, removed

    def segment_size(self, query: SegmentQuery) -> int:
        """Return how many contacts are in the segment `query` selects."""
        with self.engine.connect() as conn:
            return count_members(conn, query)

    def member_page(self, query: SegmentQuery, after_id: int, limit: int) -> list[Contact]:
        """Return up to `limit` members with id > `after_id`, by id."""
        return member_page(self.engine, query, after_id, limit)

    def member_rows(self, query: SegmentQuery, after_id: int, limit: int) -> list[Any]:
        """Return up to `limit` members with id > `after_id`, by id, as rows of the contact's
        id, phone, external id, first name, country, opt-out time and kept score columns (an
        export's)."""
        frm, where = member_where(query)
        if frm is _c:
            frm = _c.join(_ce, _ce.c.contact_id == _c.c.id, isouter=True)
        q = (
            sa.select(
                _c.c.id, _c.c.phone, _c.c.external_id, _c.c.first_name, _c.c.country,
                _c.c.opted_out_us, _ce.c.score_key, _ce.c.clicks, _ce.c.conversions,
                _ce.c.last_click_us,
            )
            .select_from(frm).where(*where, _c.c.id > after_id).order_by(_c.c.id).limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return list(conn.execute(q).all())
