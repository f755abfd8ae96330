"""Multi-touch attribution on SQL: a workspace's conversions page by page, its contacts'
touchpoints, and the names its paths show (implements `services.multitouch.MultiTouchStore`).

SMS touches (deliveries, clicks that may count), attribution settings and opt-out links are
read as single-touch attribution reads them (`storage.attribution.AttributionQueries`); this
module adds other channels' touchpoints and the labels of campaigns, links and messages.
Nothing is written: multi-touch credit is computed when it is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.attribution import SettingsOverride
from clicktrail.services.attribution import Touches
from clicktrail.services.multitouch import OtherTouch, PathConversion
from clicktrail.storage import tables as t
from clicktrail.storage.attribution import AttributionQueries
from clicktrail.storage.sql import chunks

_cv, _ct, _tp = t.conversions, t.contacts, t.touchpoints
_cp, _lk, _ms = t.campaigns, t.links, t.messages
_WS: sa.BindParameter[Any] = sa.bindparam("ws")

# A workspace's conversions with who converted (its own contact, else its click's), in id
# order (the time range: when they occurred).
_k = t.clicks.alias("k")
_WHO = sa.func.coalesce(_cv.c.contact_id, _k.c.contact_id)
CONVERSIONS = (
    sa.select(
        _cv.c.id, _cv.c.public_id, _cv.c.event, _cv.c.value_micros, _cv.c.currency,
        _cv.c.occurred_us, _WHO, _ct.c.external_id, _ct.c.phone,
    )
    .select_from(
        _cv.outerjoin(_k, _k.c.click_id == _cv.c.click_id).outerjoin(_ct, _ct.c.id == _WHO)
    )
    .where(_cv.c.workspace_id == _WS, _cv.c.id > sa.bindparam("after"))
    .order_by(_cv.c.id)
    .limit(sa.bindparam("limit"))
)  # fmt: skip
# Some contacts' touchpoints (of the workspace: a contact belongs to one).
TOUCHPOINTS = sa.select(
    _tp.c.contact_id, _tp.c.id, _tp.c.public_id, _tp.c.channel, _tp.c.occurred_us,
    _tp.c.campaign, _tp.c.source, _tp.c.touch_id,
).where(_tp.c.workspace_id == _WS, _tp.c.contact_id.in_(sa.bindparam("ids", expanding=True)))  # fmt: skip
# The workspace's campaigns (slug) and links (number from 1, URL).
CAMPAIGNS = sa.select(_cp.c.id, _cp.c.slug).where(_cp.c.workspace_id == _WS)
LINKS = (
    sa.select(_lk.c.id, _lk.c.idx, _lk.c.url)
    .join(_cp, _cp.c.id == _lk.c.campaign_id)
    .where(_cp.c.workspace_id == _WS)
)
MESSAGE_IDS = sa.select(_ms.c.id, _ms.c.public_id).where(
    _ms.c.id.in_(sa.bindparam("ids", expanding=True))
)


class MultiTouchQueries:
    """Multi-touch reads on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, attribution: AttributionQueries | None = None) -> None:
        self.engine = engine
        self._attribution = attribution or AttributionQueries(engine)

    def attribution_overrides(
        self, workspace_id: int
    ) -> tuple[SettingsOverride | None, dict[int, SettingsOverride]]:
        """Return the workspace's stored attribution settings and its campaigns', by id."""
        return self._attribution.attribution_overrides(workspace_id)

    def optout_links(self, workspace_id: int) -> set[int]:
        """Return the ids of the workspace's opt-out links."""
        return self._attribution.optout_links(workspace_id)

    def touches(self, contact_ids: Sequence[int]) -> dict[int, Touches]:
        """Return these contacts' SMS touches (`AttributionQueries.touches`)."""
        return self._attribution.touches(contact_ids)

    def path_conversions(
        self, workspace_id: int, after_id: int, limit: int, since_us: int | None,
        until_us: int | None,
    ) -> list[PathConversion]:  # fmt: skip
        """Return up to `limit` of the workspace's conversions after row `after_id`, by id,
        that occurred in [since, until) (None: unbounded)."""
        q = CONVERSIONS
        if since_us is not None:
            q = q.where(_cv.c.occurred_us >= since_us)
        if until_us is not None:
            q = q.where(_cv.c.occurred_us < until_us)
        params = {"ws": workspace_id, "after": after_id, "limit": limit}
        with self.engine.connect() as conn:
            return [PathConversion(*r) for r in conn.execute(q, params)]

    def touchpoints_of(
        self, workspace_id: int, contact_ids: Sequence[int]
    ) -> dict[int, list[OtherTouch]]:
        """Return the workspace's touchpoints of these contacts, by contact."""
        out: dict[int, list[OtherTouch]] = {}
        with self.engine.connect() as conn:
            for part in chunks(contact_ids):
                for contact, *rest in conn.execute(
                    TOUCHPOINTS, {"ws": workspace_id, "ids": list(part)}
                ):
                    out.setdefault(contact, []).append(OtherTouch(*rest))
        return out

    def campaign_slugs(self, workspace_id: int) -> dict[int, str]:
        """Return the slug of each of the workspace's campaigns, by id."""
        with self.engine.connect() as conn:
            return {int(i): s for i, s in conn.execute(CAMPAIGNS, {"ws": workspace_id})}

    def link_labels(self, workspace_id: int) -> dict[int, tuple[int, str]]:
        """Return (number from 1, URL) of each of the workspace's links, by id."""
        with self.engine.connect() as conn:
            return {int(i): (idx + 1, url) for i, idx, url in conn.execute(LINKS, {"ws": workspace_id})}  # fmt: skip

    def message_public_ids(self, message_ids: Sequence[int]) -> dict[int, str]:
        """Return the public id of each of these messages, by row id."""
        out: dict[int, str] = {}
        with self.engine.connect() as conn:
            for part in chunks(message_ids):
                out.update((int(i), p) for i, p in conn.execute(MESSAGE_IDS, {"ids": list(part)}))
        return out
