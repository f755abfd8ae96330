"""A workspace's network (CIDR) lists on SQL: add, list, page, remove, and their revisions.

Implements `services.networks.NetworkListStore` on `network_ranges` and
`network_list_revisions`. Every change that writes bumps the workspace's revision in the same
transaction, so a classifier reloads a workspace's lists only when they changed. Each public
method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.services.networks import NetworkListSummary, WorkspaceRange
from clicktrail.storage import tables as t
from clicktrail.storage.sql import chunks, upsert

_n, _r = t.network_ranges, t.network_list_revisions
_IN_LIST = (_n.c.workspace_id == sa.bindparam("ws")) & (_n.c.list_name == sa.bindparam("list"))

# The ranges of one list, to tell new ranges from changed ones.
LIST_RANGES = sa.select(_n.c.cidr, _n.c.kind, _n.c.owner).where(_IN_LIST)
# A range already in the list takes the new kind and owner.
CHANGE_RANGE = (
    _n.update()
    .where(_IN_LIST & (_n.c.cidr == sa.bindparam("b_cidr")))
    .values(kind=sa.bindparam("b_kind"), owner=sa.bindparam("b_owner"))
)
DELETE_LIST = _n.delete().where(_IN_LIST)
DELETE_RANGE = _n.delete().where(_IN_LIST & (_n.c.cidr == sa.bindparam("cidr")))
# Ranges as the service sees them, by list name and CIDR text (pages add their own bounds).
RANGES = sa.select(_n.c.list_name, _n.c.cidr, _n.c.kind, _n.c.owner, _n.c.created_us).order_by(
    _n.c.list_name, _n.c.cidr
)
# A workspace's lists: ranges, first and last added (pages add their own bounds).
LIST_SUMMARIES = (
    sa.select(_n.c.list_name, sa.func.count(), sa.func.min(_n.c.created_us),
              sa.func.max(_n.c.created_us))
    .group_by(_n.c.list_name)
    .order_by(_n.c.list_name)
)  # fmt: skip
# The kinds of ranges in some of a workspace's lists.
LIST_KINDS = (
    sa.select(_n.c.list_name, _n.c.kind)
    .where((_n.c.workspace_id == sa.bindparam("ws")) & _n.c.list_name.in_(sa.bindparam("names", expanding=True)))
    .distinct()
)  # fmt: skip
REVISIONS = sa.select(_r.c.workspace_id, _r.c.revision)


class NetworkListQueries:
    """Workspaces' network lists on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add_network_ranges(
        self,
        workspace_id: int,
        list_name: str,
        ranges: Sequence[tuple[str, str, str]],
        now_us: int,
    ) -> tuple[int, int]:
        """Add `ranges` ((cidr, kind, owner); cidrs normalized and distinct) to the workspace's
        list `list_name`, in one transaction; a range already in the list takes the new kind and
        owner. Return (added, updated). Raises `Conflict` if another writer added the same
        range at the same moment (nothing is written; try again)."""
        where = {"ws": workspace_id, "list": list_name}
        try:
            with self.engine.begin() as conn:
                existing = {r.cidr: (r.kind, r.owner) for r in conn.execute(LIST_RANGES, where)}
                new = [
                    {"workspace_id": workspace_id, "list_name": list_name, "cidr": cidr,
                     "kind": kind, "owner": owner, "created_us": now_us}
                    for cidr, kind, owner in ranges
                    if cidr not in existing
                ]  # fmt: skip
                changed = [
                    {**where, "b_cidr": cidr, "b_kind": kind, "b_owner": owner}
                    for cidr, kind, owner in ranges
                    if cidr in existing and existing[cidr] != (kind, owner)
                ]
                for chunk in chunks(new):
                    conn.execute(_n.insert(), list(chunk))
                if changed:
                    conn.execute(CHANGE_RANGE, changed)
                if new or changed:
                    _bump_revision(conn, workspace_id, now_us)
        except sa.exc.IntegrityError:
            raise Conflict(
                f"network list {list_name!r} was changed by someone else at the same time; "
                "nothing was added, try again",
                field="list",
            ) from None
        return len(new), len(changed)

    def network_lists(
        self, workspace_id: int, after: str | None = None, limit: int | None = None
    ) -> list[NetworkListSummary]:
        """Return the workspace's network lists by name (those after `after`, up to `limit`),
        each with its number of ranges, their kinds and when ranges were first and last added."""
        q = LIST_SUMMARIES.where(_n.c.workspace_id == workspace_id)
        if after is not None:
            q = q.where(_n.c.list_name > after)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            kinds: dict[str, set[str]] = {}
            if rows:
                names = [r[0] for r in rows]
                for name, kind in conn.execute(LIST_KINDS, {"ws": workspace_id, "names": names}):
                    kinds.setdefault(name, set()).add(kind)
        return [
            NetworkListSummary(name, int(count), tuple(sorted(kinds.get(name, ()))), first, last)
            for name, count, first, last in rows
        ]

    def network_ranges_page(
        self, workspace_id: int, list_name: str, after: str | None, limit: int
    ) -> list[WorkspaceRange]:
        """Return up to `limit` ranges of the workspace's list `list_name` by CIDR text, those
        after `after` (None: from the first)."""
        where = (_n.c.workspace_id == workspace_id) & (_n.c.list_name == list_name)
        if after is not None:
            where &= _n.c.cidr > after
        return self._ranges(where, limit)

    def workspace_network_ranges(self, workspace_id: int) -> list[WorkspaceRange]:
        """Return every range of every network list of the workspace, by list name and CIDR."""
        return self._ranges(_n.c.workspace_id == workspace_id, None)

    def _ranges(self, where: Any, limit: int | None) -> list[WorkspaceRange]:
        q = RANGES.where(where)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [WorkspaceRange(*r) for r in conn.execute(q)]

    def remove_network_list(self, workspace_id: int, list_name: str, now_us: int) -> int:
        """Delete the workspace's network list `list_name`; return how many ranges it had."""
        with self.engine.begin() as conn:
            gone = conn.execute(DELETE_LIST, {"ws": workspace_id, "list": list_name}).rowcount
            if gone:
                _bump_revision(conn, workspace_id, now_us)
        return int(gone)

    def remove_network_range(
        self, workspace_id: int, list_name: str, cidr: str, now_us: int
    ) -> bool:
        """Delete one range (normalized `cidr`) from the workspace's list `list_name`; return
        whether it was there."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                DELETE_RANGE, {"ws": workspace_id, "list": list_name, "cidr": cidr}
            ).rowcount
            if gone:
                _bump_revision(conn, workspace_id, now_us)
        return bool(gone)

    def network_list_revisions(self) -> dict[int, int]:
        """Return the revision of every workspace's network lists (it goes up with each change;
        a workspace that never had lists is absent)."""
        with self.engine.connect() as conn:
            return {int(w): int(v) for w, v in conn.execute(REVISIONS)}


def _bump_revision(conn: sa.Connection, workspace_id: int, now_us: int) -> None:
    conn.execute(
        upsert(
            conn,
            _r,
            {"workspace_id": workspace_id, "revision": 1, "updated_us": now_us},
            [_r.c.workspace_id],
            {"revision": _r.c.revision + 1, "updated_us": now_us},
        )
    )
