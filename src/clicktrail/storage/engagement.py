"""Engagement scores on SQL: a workspace's scoring settings, the events a contact's score is
made of, the kept scores and the contacts to score again.

Implements `services.engagement.EngagementStore` on `engagement_settings`,
`contact_engagement` and `engagement_dirty`. `mark_dirty` is the primitive the writers of
clicks, verdicts and conversions (storage/inbox.py, storage/clicks.py, storage/conversions.py)
call inside their own transactions; nothing here computes a score (domain/engagement.py does,
services/engagement.py decides when). Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.engagement import (
    CONVERSION,
    EngagementEvent,
    EngagementSettings,
    EngagementState,
    event_kind,
)
from clicktrail.domain.report import COUNTED_VERDICTS
from clicktrail.services.engagement import KeptSettings, ScoredContact, StoredEngagement
from clicktrail.storage import tables as t
from clicktrail.storage.sql import chunks, upsert, upsert_many

_st, _ce, _dy = t.engagement_settings, t.contact_engagement, t.engagement_dirty
_m, _ck, _lk, _cp, _cv, _c = t.messages, t.clicks, t.links, t.campaigns, t.conversions, t.contacts
OPTOUT_ROLE = "optout"
IDS: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)

SETTINGS_OF = sa.select(
    _st.c.workspace_id, _st.c.click_weight, _st.c.conversion_weight, _st.c.preview_weight,
    _st.c.half_life_days, _st.c.engaged_min, _st.c.at_risk_min, _st.c.revision,
    _st.c.scoring_revision,
).where(_st.c.workspace_id.in_(IDS))  # fmt: skip
# Every workspace with the scoring revision of its settings (0 without settings).
SCORING_REVISIONS = sa.select(
    t.workspaces.c.id, sa.func.coalesce(_st.c.scoring_revision, 0)
).select_from(t.workspaces.outerjoin(_st, _st.c.workspace_id == t.workspaces.c.id))
# The requests of contacts' messages (test sends left out) that may count: preview fetches,
# and GETs whose verdict counts (`event_kind` then leaves opt-out links out). Driven by
# ix_messages_contact_id, then the clicks of each message (ix_clicks_message_id).
CLICK_EVENTS = (
    sa.select(
        _m.c.contact_id,
        _ck.c.at_us,
        _ck.c.verdict,
        _ck.c.is_click,
        _lk.c.role,
        _ck.c.click_id,
        _cp.c.slug,
    )
    .select_from(
        _m.join(_ck, _ck.c.message_id == _m.c.id)
        .join(_lk, _lk.c.id == _ck.c.link_id)
        .join(_cp, _cp.c.id == _ck.c.campaign_id)
    )
    .where(
        _m.c.contact_id.in_(IDS),
        sa.not_(_m.c.is_test),
        sa.or_(
            _ck.c.verdict == "preview",
            sa.and_(
                _ck.c.is_click,
                sa.or_(_ck.c.verdict.is_(None), _ck.c.verdict.in_(COUNTED_VERDICTS)),
            ),
        ),
    )
)
CONVERSION_EVENTS = sa.select(
    _cv.c.contact_id, _cv.c.occurred_us, _cv.c.public_id, _cv.c.event
).where(_cv.c.contact_id.in_(IDS))
WORKSPACE_OF = sa.select(_c.c.id, _c.c.workspace_id).where(_c.c.id.in_(IDS))
TAKE_DIRTY = sa.select(_dy.c.seq, _dy.c.contact_id).order_by(_dy.c.seq).limit(sa.bindparam("n"))
# By the rows' own seqs, never by range: on PostgreSQL a row with a lower seq can commit later.
DONE_DIRTY = _dy.delete().where(_dy.c.seq.in_(IDS))
DIRTY_COUNT = sa.select(sa.func.count()).select_from(_dy)
DROP_ROWS = _ce.delete().where(_ce.c.contact_id.in_(IDS))
CONTACTS_PAGE = (
    sa.select(_c.c.id)
    .where(_c.c.workspace_id == sa.bindparam("ws"), _c.c.id > sa.bindparam("after"))
    .order_by(_c.c.id)
    .limit(sa.bindparam("n"))
)
ROW_OF = sa.select(
    _ce.c.score_key, _ce.c.clicks, _ce.c.conversions, _ce.c.previews, _ce.c.last_click_us,
    _ce.c.last_conversion_us, _ce.c.last_event_us, _ce.c.revision, _ce.c.updated_us,
).where(_ce.c.contact_id == sa.bindparam("id"))  # fmt: skip
# Kept rows stamped with an epoch below the workspace's (a range of ix_contact_engagement_epoch).
STALE = (_ce.c.workspace_id == sa.bindparam("ws"), _ce.c.revision < sa.bindparam("epoch"))
STALE_ROWS = sa.select(sa.func.count()).where(*STALE)
STALE_PAGE = sa.select(_ce.c.contact_id).where(*STALE).limit(sa.bindparam("n"))
KEPT_ROWS = sa.select(sa.func.count()).where(_ce.c.workspace_id == sa.bindparam("ws"))


def mark_dirty(conn: sa.Connection, contact_ids: Iterable[int | None]) -> None:
    """Note, inside the caller's transaction, that these contacts' scores must be computed
    again (the click pipeline does it: services/engagement.py)."""
    ids = sorted({int(i) for i in contact_ids if i is not None})
    if ids:
        conn.execute(_dy.insert(), [{"contact_id": i} for i in ids])


def _settings(r: Any) -> KeptSettings:
    return KeptSettings(EngagementSettings(*(float(x) for x in r[1:7])), int(r[7]), int(r[8]))


class EngagementQueries:
    """Engagement scores on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def engagement_settings(self, workspace_ids: Sequence[int]) -> dict[int, KeptSettings]:
        """Return {workspace id: settings and revisions} of those workspaces with settings
        stored (the others score with the defaults, revisions 0)."""
        out: dict[int, KeptSettings] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(workspace_ids))):
                for r in conn.execute(SETTINGS_OF, {"ids": list(chunk)}):
                    out[int(r[0])] = _settings(r)
        return out

    def set_engagement_settings(
        self, workspace_id: int, settings: EngagementSettings, now_us: int, *, rescore: bool
    ) -> int:
        """Store the workspace's settings; return their new revision. `rescore`: they score
        events differently (the scoring revision goes up too)."""
        values = {
            "click_weight": settings.click_weight,
            "conversion_weight": settings.conversion_weight,
            "preview_weight": settings.preview_weight,
            "half_life_days": settings.half_life_days,
            "engaged_min": settings.engaged_min,
            "at_risk_min": settings.at_risk_min,
            "updated_us": now_us,
        }
        with self.engine.begin() as conn:
            step = 1 if rescore else 0
            first = {"workspace_id": workspace_id, **values, "revision": 1,
                     "scoring_revision": step}  # fmt: skip
            again = {**values, "revision": _st.c.revision + 1,
                     "scoring_revision": _st.c.scoring_revision + step}  # fmt: skip
            conn.execute(upsert(conn, _st, first, [_st.c.workspace_id], again))
            found = conn.execute(
                sa.select(_st.c.revision).where(_st.c.workspace_id == workspace_id)
            ).scalar_one()
        return int(found)

    def take_dirty(self, limit: int) -> list[tuple[int, int]]:
        """Return up to `limit` (seq, contact id) of contacts to score again, oldest first;
        left in place until `put_engagement` names their seqs."""
        with self.engine.connect() as conn:
            return [(int(s), int(c)) for s, c in conn.execute(TAKE_DIRTY, {"n": limit})]

    def dirty_count(self) -> int:
        """Return how many notes of contacts to score again are waiting."""
        with self.engine.connect() as conn:
            return int(conn.execute(DIRTY_COUNT).scalar_one())

    def contact_events(
        self, contact_ids: Sequence[int]
    ) -> tuple[dict[int, int], dict[int, list[EngagementEvent]]]:
        """Return {contact id: workspace id} of the contacts that exist, and {contact id:
        events that count} (clicks, preview fetches, conversions), in no particular order."""
        ids = sorted(set(contact_ids))
        workspaces: dict[int, int] = {}
        events: dict[int, list[EngagementEvent]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                p = {"ids": list(chunk)}
                workspaces.update((int(i), int(w)) for i, w in conn.execute(WORKSPACE_OF, p))
                for cid, at, verdict, is_click, role, click_id, slug in conn.execute(
                    CLICK_EVENTS, p
                ):
                    kind = event_kind(verdict, is_click, role == OPTOUT_ROLE)
                    if kind is not None:
                        events.setdefault(int(cid), []).append(
                            EngagementEvent(kind, int(at), click_id, slug)
                        )
                for cid, at, public_id, event in conn.execute(CONVERSION_EVENTS, p):
                    events.setdefault(int(cid), []).append(
                        EngagementEvent(CONVERSION, int(at), public_id, event)
                    )
        return workspaces, events

    def put_engagement(
        self, scored: Sequence[ScoredContact], done: Sequence[int], now_us: int
    ) -> None:
        """Store the contacts' states (a contact whose state has no event loses its row) and
        delete the notes `done` (seqs), in one transaction."""
        keep = [s for s in scored if s.state.last_event_us is not None]
        drop = [s.contact_id for s in scored if s.state.last_event_us is None]
        with self.engine.begin() as conn:
            for chunk in chunks(drop):
                conn.execute(DROP_ROWS, {"ids": list(chunk)})
            rows = [
                {
                    "contact_id": s.contact_id, "workspace_id": s.workspace_id,
                    "score_key": s.state.key, "clicks": s.state.clicks,
                    "conversions": s.state.conversions, "previews": s.state.previews,
                    "last_click_us": s.state.last_click_us,
                    "last_conversion_us": s.state.last_conversion_us,
                    "last_event_us": s.state.last_event_us, "revision": s.epoch,
                    "updated_us": now_us,
                }
                for s in keep
            ]  # fmt: skip
            if rows:  # one statement for all (a round trip per row cost 2 ms each on PostgreSQL)
                conn.execute(upsert_many(conn, _ce, ["contact_id"]), rows)
            for chunk in chunks(done):
                conn.execute(DONE_DIRTY, {"ids": list(chunk)})

    def workspace_contact_ids(self, workspace_id: int, after_id: int, limit: int) -> list[int]:
        """Return up to `limit` ids of the workspace's contacts above `after_id`, by id."""
        with self.engine.connect() as conn:
            found = conn.execute(CONTACTS_PAGE, {"ws": workspace_id, "after": after_id, "n": limit})
            return [int(i) for i in found.scalars()]

    def stored_engagement(self, contact_id: int) -> StoredEngagement | None:
        """Return the contact's kept state (None: no row, a score of 0)."""
        with self.engine.connect() as conn:
            r = conn.execute(ROW_OF, {"id": contact_id}).first()
        if r is None:
            return None
        key, clicks, conversions, previews, lc, lv, le, epoch, updated = r
        state = EngagementState(
            None if key is None else float(key), int(clicks), int(conversions), int(previews),
            lc, lv, le,
        )  # fmt: skip
        return StoredEngagement(state, int(epoch), int(updated))

    def stale_rows(self, workspace_id: int, epoch: int) -> tuple[int, int]:
        """Return (kept rows of the workspace stamped below `epoch`, all its kept rows)."""
        with self.engine.connect() as conn:
            stale = conn.execute(STALE_ROWS, {"ws": workspace_id, "epoch": epoch}).scalar_one()
            kept = conn.execute(KEPT_ROWS, {"ws": workspace_id}).scalar_one()
        return int(stale), int(kept)

    def scoring_revisions(self) -> dict[int, int]:
        """Return {workspace id: its scoring revision} of every workspace."""
        with self.engine.connect() as conn:
            return {int(w): int(r) for w, r in conn.execute(SCORING_REVISIONS)}

    def stale_contacts(self, workspace_id: int, epoch: int, limit: int) -> list[int]:
        """Return up to `limit` ids of the workspace's contacts whose kept row is stamped below
        `epoch`."""
        with self.engine.connect() as conn:
            found = conn.execute(STALE_PAGE, {"ws": workspace_id, "epoch": epoch, "n": limit})
            return [int(i) for i in found.scalars()]
