"""Opt-outs on SQL: contacts' opt-out state, their history and keyword replies.

Implements `services.optouts.OptOutStore` on `contacts.opted_out_us`, `opt_out_events` and
`keyword_replies` (migration 0010). Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain import events
from clicktrail.services.optouts import KeywordReplies, OptChange, OptOutEvent, OptResult
from clicktrail.storage import tables as t
from clicktrail.storage.events import append_events, subscribers
from clicktrail.storage.sql import chunks, insert_ignore, upsert


def _opt_events(
    conn: sa.Connection, workspace_id: int, facts: list[tuple[int, OptChange]], now_us: int
) -> None:
    # contact.opted_out / contact.opted_in for the changes that applied, in their transaction.
    c = t.contacts
    external: dict[int, str | None] = {}
    for chunk in chunks(sorted({cid for cid, _ in facts})):
        q = sa.select(c.c.id, c.c.external_id).where(c.c.id.in_(chunk))
        external.update(dict(conn.execute(q).all()))
    new = []
    for cid, x in facts:
        type_ = events.CONTACT_OPTED_OUT if x.opted_out else events.CONTACT_OPTED_IN
        data = {
            "contact": {"phone": x.phone, "external_id": external.get(cid)},
            "occurred_at": events.iso(x.at_us), "source": x.source[:100], "keyword": x.keyword,
        }  # fmt: skip
        new.append(events.event(workspace_id, type_, f"{cid}/{x.at_us}", x.at_us, data))
    append_events(conn, new, now_us)


class OptOutQueries:
    """Opt-out state and history on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record_opt_changes(
        self, workspace_id: int, changes: Sequence[OptChange], now_us: int
    ) -> list[OptResult]:
        """Apply `changes` in order and record each in the history, in one transaction.

        A change applies when it is not older than the contact's latest event and changes its
        state; otherwise it is recorded with `applied` false. Unknown phones become contacts
        when the change asks for it; other unknown phones are reported with `known` false.
        """
        c, ev = t.contacts, t.opt_out_events
        results: list[OptResult] = []
        with self.engine.begin() as conn:
            phones = sorted({x.phone for x in changes})
            # [contact id, opted_out_us, time of the latest event or None]
            state: dict[str, list[Any]] = {}
            for chunk in chunks(phones):
                for r in conn.execute(
                    sa.select(c.c.id, c.c.phone, c.c.opted_out_us)
                    .where(c.c.workspace_id == workspace_id, c.c.phone.in_(chunk))
                    # Two keywords from one phone at once must not both read the old state.
                    .with_for_update()
                ):
                    state[r.phone] = [r.id, r.opted_out_us, None]
            created = sorted(
                {x.phone for x in changes if x.phone not in state and x.create_contact}
            )
            if created:
                # Insert-or-ignore: a STOP from the same new phone may be creating it right now.
                conn.execute(
                    insert_ignore(conn, c),
                    [
                        {"workspace_id": workspace_id, "phone": p, "attributes": {},
                         "created_us": now_us, "updated_us": now_us}
                        for p in created
                    ],
                )  # fmt: skip
                for chunk in chunks(created):
                    for r in conn.execute(
                        sa.select(c.c.id, c.c.phone, c.c.opted_out_us)
                        .where(c.c.workspace_id == workspace_id, c.c.phone.in_(chunk))
                        .with_for_update()
                    ):
                        state[r.phone] = [r.id, r.opted_out_us, None]
            by_id = {v[0]: v for v in state.values()}
            for chunk in chunks(sorted(by_id)):
                for cid, latest in conn.execute(
                    sa.select(ev.c.contact_id, sa.func.max(ev.c.at_us))
                    .where(ev.c.contact_id.in_(chunk))
                    .group_by(ev.c.contact_id)
                ):
                    by_id[cid][2] = latest
            new_contacts = set(created)
            events: list[dict[str, Any]] = []
            facts: list[tuple[int, OptChange]] = []  # the changes that applied
            changed: set[int] = set()
            for x in changes:
                st = state.get(x.phone)
                if st is None:
                    results.append(OptResult(x.phone, known=False, applied=False, opted_out=False))
                    continue
                cid, out_us, latest = st
                applied = (latest is None or x.at_us >= latest) and (out_us is not None) != (
                    x.opted_out
                )
                if latest is None or x.at_us > latest:
                    st[2] = x.at_us
                if applied:
                    st[1] = x.at_us if x.opted_out else None
                    changed.add(cid)
                    facts.append((cid, x))
                events.append(
                    {
                        "workspace_id": workspace_id,
                        "contact_id": cid,
                        "opted_out": x.opted_out,
                        "at_us": x.at_us,
                        "source": x.source[:100],
                        "keyword": x.keyword,
                        "to_number": x.to_number,
                        "note": x.note,
                        "applied": applied,
                        "recorded_us": now_us,
                    }
                )
                results.append(
                    OptResult(x.phone, True, applied, st[1] is not None, x.phone in new_contacts)
                )
            if changed:
                conn.execute(
                    c.update()
                    .where(c.c.id == sa.bindparam("b_id"))
                    .values(opted_out_us=sa.bindparam("b_out"), updated_us=now_us),
                    [{"b_id": cid, "b_out": by_id[cid][1]} for cid in sorted(changed)],
                )
            if events:
                conn.execute(ev.insert(), events)
            if facts and workspace_id in subscribers(conn):
                _opt_events(conn, workspace_id, facts, now_us)
        return results

    def opt_out_history(self, workspace_id: int, contact_id: int, limit: int) -> list[OptOutEvent]:
        """Return the contact's newest `limit` history events, newest first."""
        ev = t.opt_out_events
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ev)
                .where(ev.c.workspace_id == workspace_id, ev.c.contact_id == contact_id)
                .order_by(ev.c.at_us.desc(), ev.c.id.desc())
                .limit(limit)
            ).all()
        return [
            OptOutEvent(
                bool(r.opted_out),
                r.at_us,
                r.source,
                r.keyword,
                r.to_number,
                r.note,
                bool(r.applied),
                r.recorded_us,
            )
            for r in rows
        ]

    def keyword_replies(self, workspace_id: int) -> KeywordReplies:
        """Return the workspace's keyword replies (none when never set)."""
        kr = t.keyword_replies
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(kr).where(kr.c.workspace_id == workspace_id)).first()
        return KeywordReplies(r.help, r.opt_out, r.opt_in) if r else KeywordReplies()

    def set_keyword_replies(self, workspace_id: int, replies: KeywordReplies, now_us: int) -> None:
        """Store the workspace's keyword replies, replacing the previous ones."""
        kr = t.keyword_replies
        values = {
            "help": replies.help,
            "opt_out": replies.opt_out,
            "opt_in": replies.opt_in,
            "updated_us": now_us,
        }
        with self.engine.begin() as conn:
            conn.execute(
                upsert(conn, kr, {"workspace_id": workspace_id, **values}, ["workspace_id"], values)
            )
