"""Messages on SQL: storing queued messages with their tokens, receipts moving them forward,
and the lookups of one message or of a campaign's first messages and links.

Implements `services.receipts.ReceiptStore` (and what `services.demo` and `clicktrail serve`
read) on `messages`, `tokens` and `message_events`. Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.attribution import MAX_WINDOW_US
from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Receipt
from clicktrail.domain.status import FINAL, RANK, Status
from clicktrail.services.ports import NewMessage
from clicktrail.services.receipts import ReceiptOutcome
from clicktrail.storage import tables as t
from clicktrail.storage.events import message_events
from clicktrail.storage.rollup import refresh_click_rollup
from clicktrail.storage.sql import chunks, driver_insert

_m, _tk, _lk, _cp = t.messages, t.tokens, t.links, t.campaigns
_cc, _cv = t.conversion_credits, t.conversions

# New messages' ids, read back by public id: COPY has no RETURNING, and this is cheaper than
# RETURNING through executemany. (Not by (campaign, contact): a contact may also have test
# sends of the campaign.)
IDS_BY_PUBLIC_ID = sa.select(_m.c.public_id, _m.c.id).where(
    _m.c.public_id.in_(sa.bindparam("pids", expanding=True))
)
# A workspace's messages among some public ids, as receipts need them (other workspaces'
# messages are unknown here).
RECEIPT_STATE = (
    sa.select(_m.c.id, _m.c.public_id, _m.c.status, _m.c.sent_us, _m.c.contact_id)
    .join(_cp, _cp.c.id == _m.c.campaign_id)
    .where(_cp.c.workspace_id == sa.bindparam("ws"),
           _m.c.public_id.in_(sa.bindparam("pids", expanding=True)))
)  # fmt: skip
FIRST_MESSAGE_IDS = (
    sa.select(_m.c.public_id)
    .where(_m.c.campaign_id == sa.bindparam("campaign"))
    .order_by(_m.c.id)
    .limit(sa.bindparam("limit"))
)
# (token, recipient, destination) of a campaign's first links, in message then link order.
SAMPLE_LINKS = (
    sa.select(_tk.c.token, _m.c.to_phone, sa.func.coalesce(_tk.c.destination, _lk.c.url))
    .join(_m, _m.c.id == _tk.c.message_id)
    .join(_lk, _lk.c.id == _tk.c.link_id)
    .where(_tk.c.campaign_id == sa.bindparam("campaign"))
    .order_by(_m.c.id, _lk.c.idx)
    .limit(sa.bindparam("limit"))
)
MESSAGE = sa.select(_m).where(_m.c.public_id == sa.bindparam("pid"))


# A delivery receipt may come after conversions it bears on (late receipts, receipts files
# applied later): the delivery can make a view for the contact's conversions that occurred
# within a delivery window after it. Their credits are marked unsettled in the receipt's own
# transaction (`unsettle_after_deliveries`), so the jobs' next pass attributes them again, as
# it does credits waiting for final verdicts. Through `ix_conversions_contact_id_occurred_us`.
UNSETTLE_AFTER_DELIVERY = (
    _cc.update()
    .where(
        _cc.c.conversion_id.in_(
            sa.select(_cv.c.id).where(
                (_cv.c.contact_id == sa.bindparam("contact"))
                & _cv.c.occurred_us.between(sa.bindparam("delivered"), sa.bindparam("until"))
            )
        )
        & _cc.c.settled
    )
    .values(settled=False)
)


def unsettle_after_deliveries(conn: sa.Connection, deliveries: Iterable[tuple[int, int]]) -> None:
    """Mark unsettled, inside the caller's transaction, the credits of conversions that
    occurred after one of these deliveries, (contact id, delivered µs), within the longest
    window: the next attribution pass finds them (`storage.attribution.UNSETTLED`) and
    attributes them again."""
    params = [
        {"contact": c, "delivered": at, "until": at + MAX_WINDOW_US} for c, at in set(deliveries)
    ]
    if params:
        conn.execute(UNSETTLE_AFTER_DELIVERY, params)


class MessageQueries:
    """Messages on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def insert_messages(
        self, batch: Sequence[NewMessage], also: Callable[[sa.Connection], None] | None = None
    ) -> None:
        """Store queued messages and their tokens in one transaction (with `also`, which gets the
        connection: the sending job records how far wrapping got in the same commit).

        Raises `Conflict` when a token collides (the caller draws new tokens and retries).
        """
        # A unique clash, as SQLAlchemy raises it or as the driver does (driver_insert).
        clash = (sa.exc.IntegrityError, self.engine.dialect.loaded_dbapi.IntegrityError)
        try:
            with self.engine.begin() as conn:
                if also is not None:
                    also(conn)
                if not batch:
                    return
                driver_insert(conn, _m, [message_row(x) for x in batch])
                by_pid = dict(
                    conn.execute(IDS_BY_PUBLIC_ID, {"pids": [x.public_id for x in batch]}).all()
                )
                ids = [by_pid[x.public_id] for x in batch]
                tokens = [r for mid, x in zip(ids, batch, strict=True) for r in token_rows(mid, x)]
                if tokens:
                    driver_insert(conn, _tk, tokens)
        except clash as exc:
            raise Conflict("token or message collision; retry with new tokens") from exc

    def apply_receipts(
        self,
        workspace_id: int,
        receipts: Sequence[Receipt],
        *,
        skip_unknown: bool,
        source: str,
        now_us: int,
    ) -> ReceiptOutcome:
        """Move messages forward by their receipts, in one transaction.

        A receipt that does not advance a message (late, repeated, out of order) changes nothing
        but is logged. Unknown message ids (including other workspaces' messages) are returned in
        `unknown`; unless `skip_unknown`, nothing is then written and `rejected` is set.
        """
        outcome = ReceiptOutcome()
        with self.engine.begin() as conn:
            state: dict[str, list[Any]] = {}
            ids = sorted({r.message_id for r in receipts})
            for chunk in chunks(ids):
                for row in conn.execute(RECEIPT_STATE, {"ws": workspace_id, "pids": list(chunk)}):
                    state[row.public_id] = [row.id, Status(row.status), row.sent_us,
                                            row.contact_id]  # fmt: skip
            outcome.unknown = [r.message_id for r in receipts if r.message_id not in state]
            if outcome.unknown and not skip_unknown:
                outcome.rejected = True
                return outcome
            events: list[dict[str, Any]] = []
            changes: dict[int, dict[str, Any]] = {}
            for r in receipts:
                st = state.get(r.message_id)
                if st is None:
                    continue
                mid, current, sent_us = st[0], st[1], st[2]
                new = Status(r.status)
                applied = RANK[new] > RANK[current]
                change = changes.setdefault(mid, {})
                if new == Status.SENT and sent_us is None:
                    # A late 'sent' still tells when the message left, without moving it back.
                    change["sent_us"] = r.at_us
                    st[2] = r.at_us
                if applied:
                    st[1] = new
                    change["status"] = new.value
                    change["status_us"] = r.at_us
                    if new == Status.DELIVERED:
                        change["delivered_us"] = r.at_us
                    elif new in FINAL:
                        change["failed_us"] = r.at_us
                    outcome.applied += 1
                else:
                    outcome.unchanged += 1
                events.append(
                    {
                        "message_id": mid,
                        "status": new.value,
                        "at_us": r.at_us,
                        "source": source,
                        "applied": applied,
                        "recorded_us": now_us,
                    }
                )
            for mid, change in changes.items():
                if change:
                    conn.execute(_m.update().where(_m.c.id == mid).values(change))
            if events:
                conn.execute(t.message_events.insert(), events)
            refresh_click_rollup(conn, [i for i, c in changes.items() if "delivered_us" in c])
            # A delivery can make a view of conversions already attributed: theirs are redone.
            unsettle_after_deliveries(
                conn,
                [(st[3], changes[st[0]]["delivered_us"]) for st in state.values()
                 if "delivered_us" in changes.get(st[0], {})],
            )  # fmt: skip
            message_events(
                conn, workspace_id,
                {i: (c["status"], c["status_us"]) for i, c in changes.items() if "status" in c},
                now_us,
            )  # fmt: skip
        return outcome

    def queued_or_sent_ids(self, campaign_id: int, limit: int) -> list[str]:
        """Return public ids of up to `limit` of the campaign's messages, oldest first."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(FIRST_MESSAGE_IDS, {"campaign": campaign_id, "limit": limit}).scalars()
            )

    def sample_links(self, campaign_id: int, limit: int) -> list[tuple[str, str, str]]:
        """Return (token, recipient phone, destination) of up to `limit` of the campaign's links."""
        with self.engine.connect() as conn:
            rows = conn.execute(SAMPLE_LINKS, {"campaign": campaign_id, "limit": limit}).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def message_status(self, public_id: str) -> dict[str, Any] | None:
        """Return a message's status and times, or None."""
        with self.engine.connect() as conn:
            r = conn.execute(MESSAGE, {"pid": public_id}).first()
        return dict(r._mapping) if r else None


def message_row(x: NewMessage) -> dict[str, Any]:
    """Return the `messages` row of a new message, queued."""
    return {
        "public_id": x.public_id,
        "campaign_id": x.campaign_id,
        "contact_id": x.contact_id,
        "to_phone": x.to_phone,
        "body": x.body,
        "encoding": x.encoding,
        "segments": x.segments,
        "status": Status.QUEUED.value,
        "queued_us": x.queued_us,
        "status_us": x.queued_us,
        "variant": x.variant,
    }


def token_rows(message_id: int, x: NewMessage) -> list[dict[str, Any]]:
    """Return the `tokens` rows of new message `x`, stored as `message_id`."""
    return [
        {
            "token": tok,
            "message_id": message_id,
            "link_id": link_id,
            "campaign_id": x.campaign_id,
            "contact_id": x.contact_id,
            "destination": dest,
        }
        for tok, link_id, dest in x.tokens
    ]
