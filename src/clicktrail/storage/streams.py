"""The outbox as the stream-out reads it (services/streams.py): events from its cursor, the
cursor moved in a transaction of its own, workspaces' slugs.

Implements `services.streams.StreamStore`. Which workspaces events are written for while a
stream is configured is `storage.events.stream_workspaces`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from clicktrail.domain.events import StoredEvent
from clicktrail.storage import tables as t
from clicktrail.storage.events import EventQueries
from clicktrail.storage.sql import chunks

_w = t.workspaces


class StreamQueries:
    """The stream-out's outbox reads and cursor on one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.events = EventQueries(engine)

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        return self.events.events_after(consumer, limit)

    def advance(self, consumer: str, last: StoredEvent, now_us: int) -> None:
        """Move `consumer`'s cursor to `last` (never back), in a transaction of its own."""
        with self.engine.begin() as conn:
            self.events.move_cursor(conn, consumer, last, now_us)

    def workspace_slugs(self, workspace_ids: Sequence[int]) -> dict[int, str]:
        """The slug of each of these workspaces that still exists."""
        out: dict[int, str] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(workspace_ids))):
                q = sa.select(_w.c.id, _w.c.slug).where(_w.c.id.in_(chunk))
                out.update({r.id: r.slug for r in conn.execute(q)})
        return out
