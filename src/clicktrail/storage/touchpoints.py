"""Touchpoints on SQL: storing other channels' touches once per touch id, and reading a
contact's touches for multi-touch attribution.

Implements `services.touchpoints.TouchpointStore` on `touchpoints` (contacts are resolved as
conversions resolve theirs: `storage.conversions`). A batch is stored with one INSERT … ON
CONFLICT DO NOTHING RETURNING per 500 rows, so concurrent senders of the same touch id store it
once on SQLite and PostgreSQL alike. Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.services.touchpoints import NewTouchpoint, StoredTouch
from clicktrail.storage import tables as t
from clicktrail.storage.conversions import ConversionQueries
from clicktrail.storage.sql import chunks, insert_ignore

_tp = t.touchpoints
ROWS_PER_INSERT = 500  # 11 columns each: well under both databases' parameter limits

# The stored touches holding some dedup keys.
HOLDERS = sa.select(_tp.c.dedup_key, _tp.c.public_id).where(
    _tp.c.workspace_id == sa.bindparam("ws"),
    _tp.c.dedup_key.in_(sa.bindparam("keys", expanding=True)),
)


def _row(r: NewTouchpoint) -> dict[str, Any]:
    return {
        "public_id": r.public_id, "workspace_id": r.workspace_id, "channel": r.channel,
        "contact_id": r.contact_id, "occurred_us": r.occurred_us, "received_us": r.received_us,
        "campaign": r.campaign, "source": r.source, "touch_id": r.touch_id,
        "dedup_key": r.dedup_key, "meta": r.metadata,
    }  # fmt: skip


class TouchpointQueries:
    """Touchpoints on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._contacts = ConversionQueries(engine)

    def contacts_by_ref(
        self, workspace_id: int, external_ids: Sequence[str], phones: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Return the workspace's contact ids by external id (the first stored of those sharing
        one) and by phone (E.164)."""
        return self._contacts.contacts_by_ref(workspace_id, external_ids, phones)

    def put_touchpoints(self, rows: Sequence[NewTouchpoint]) -> dict[str, StoredTouch]:
        """Store the rows whose dedup key is new in their workspace, in one transaction; return
        what happened, by dedup key (rows share one workspace, keys are distinct)."""
        if not rows:
            return {}
        ws = rows[0].workspace_id
        out: dict[str, StoredTouch] = {}
        with self.engine.begin() as conn:
            ins = insert_ignore(conn, _tp)
            for chunk in chunks(rows, ROWS_PER_INSERT):
                stmt = ins.values([_row(r) for r in chunk]).returning(_tp.c.dedup_key)
                new = set(conn.execute(stmt).scalars())
                out.update((r.dedup_key, StoredTouch(r.public_id, True)) for r in chunk
                           if r.dedup_key in new)  # fmt: skip
            taken = [r.dedup_key for r in rows if r.dedup_key not in out]
            for keys in chunks(taken):
                for key, public_id in conn.execute(HOLDERS, {"ws": ws, "keys": list(keys)}):
                    out[key] = StoredTouch(public_id, False)
        return out
