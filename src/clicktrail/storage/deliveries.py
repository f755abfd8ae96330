"""Webhook deliveries on SQL (`webhook_deliveries`, `webhook_attempts`, migration 0020), and the
outbox as the webhook dispatcher reads it.

Implements `services.deliveries.DeliveryStore`. Each public method is one transaction. A claim
is an UPDATE of the due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers never
claim the same delivery; SQLite has one writer at a time) that moves their next attempt past the
attempt's timeout: the lease a killed worker's deliveries are claimed again after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain import events as ev
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.ids import new_public_id
from clicktrail.services.deliveries import Attempt, Delivery, DisablePolicy, Due, Result
from clicktrail.services.webhooks import Endpoint
from clicktrail.storage import tables as t
from clicktrail.storage.events import EventQueries, append_events
from clicktrail.storage.sql import chunks, insert_ignore, is_postgres
from clicktrail.storage.webhooks import endpoint_of

_d, _a, _e, _ev = t.webhook_deliveries, t.webhook_attempts, t.webhook_endpoints, t.events
DELIVERY_PREFIX = "dlv"
GONE = "the endpoint answered 410 Gone"

# What an attempt of claimed deliveries needs: the endpoint's URL and secrets, the event.
DUE_ROWS = (
    sa.select(_d.c.id, _d.c.public_id, _d.c.attempts, _d.c.endpoint_id, _e.c.url, _e.c.secret,
              _e.c.old_secret, _e.c.old_secret_until_us, _ev.c.public_id.label("event"),
              _ev.c.type, _ev.c.payload)
    .join(_e, _e.c.id == _d.c.endpoint_id)
    .join(_ev, _ev.c.id == _d.c.event_id)
)  # fmt: skip
# A delivery as the API shows it.
SHOWN = (
    sa.select(_d.c.id, _d.c.public_id, _e.c.public_id.label("endpoint"),
              _ev.c.public_id.label("event"), _ev.c.type, _d.c.state, _d.c.attempts,
              _d.c.next_attempt_us, _d.c.last_attempt_us, _d.c.last_status, _d.c.last_error,
              _d.c.created_us, _d.c.completed_us)
    .join(_e, _e.c.id == _d.c.endpoint_id)
    .join(_ev, _ev.c.id == _d.c.event_id)
    .where(_d.c.workspace_id == sa.bindparam("ws"))
)  # fmt: skip


def _delivery(r: Any) -> Delivery:
    return Delivery(
        r.public_id, r.endpoint, r.event, r.type, r.state, r.attempts, r.next_attempt_us,
        r.last_attempt_us, r.last_status, r.last_error, r.created_us, r.completed_us,
    )  # fmt: skip


class DeliveryQueries:
    """Webhook deliveries on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.outbox = EventQueries(engine)

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        return self.outbox.events_after(consumer, limit)

    def endpoints_of(self, workspace_ids: Sequence[int]) -> list[Endpoint]:
        """The enabled endpoints of these workspaces."""
        out: list[Endpoint] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(workspace_ids)):
                q = sa.select(_e).where(_e.c.workspace_id.in_(chunk), _e.c.enabled)
                out += [endpoint_of(r) for r in conn.execute(q.order_by(_e.c.id))]
        return out

    def add_deliveries(
        self, consumer: str, pairs: Sequence[tuple[Endpoint, StoredEvent]], last: StoredEvent,
        now_us: int,
    ) -> int:  # fmt: skip
        """Create a pending delivery per (endpoint, event) and move the cursor, in one
        transaction; return how many were given."""
        rows = [
            {"public_id": new_public_id(DELIVERY_PREFIX), "workspace_id": ep.workspace_id,
             "endpoint_id": ep.id, "event_id": e.id, "state": "pending", "attempts": 0,
             "next_attempt_us": now_us, "created_us": now_us}
            for ep, e in pairs
        ]  # fmt: skip
        with self.engine.begin() as conn:
            if rows:
                conn.execute(insert_ignore(conn, _d), rows)
            self.outbox.move_cursor(conn, consumer, last, now_us)
        return len(rows)

    def claim(self, limit: int, now_us: int, lease_until_us: int) -> list[Due]:
        """Claim up to `limit` due deliveries of enabled endpoints, oldest due first."""
        due = (
            sa.select(_d.c.id)
            .join(_e, _e.c.id == _d.c.endpoint_id)
            .where(_d.c.state == "pending", _d.c.next_attempt_us <= now_us, _e.c.enabled)
            .order_by(_d.c.next_attempt_us)
            .limit(limit)
        )
        with self.engine.connect() as conn:  # nothing due: no write transaction (SQLite's lock)
            if conn.execute(due.limit(1)).first() is None:
                return []
        with self.engine.begin() as conn:
            if is_postgres(conn):
                due = due.with_for_update(of=_d, skip_locked=True)
            ids = [
                r.id
                for r in conn.execute(
                    _d.update()
                    .where(_d.c.id.in_(due.scalar_subquery()))
                    .values(attempts=_d.c.attempts + 1, next_attempt_us=lease_until_us)
                    .returning(_d.c.id)
                )
            ]
            rows = []
            for chunk in chunks(sorted(ids)):
                rows += list(conn.execute(DUE_ROWS.where(_d.c.id.in_(chunk))))
        out = []
        for r in sorted(rows, key=lambda r: r.id):
            secrets = [r.secret]
            if r.old_secret and (r.old_secret_until_us or 0) > now_us:
                secrets.append(r.old_secret)
            out.append(Due(r.id, r.public_id, r.attempts, r.endpoint_id, r.url, tuple(secrets),
                           r.event, r.type, r.payload))  # fmt: skip
        return out

    def record(self, results: Sequence[Result], policy: DisablePolicy, now_us: int) -> list[int]:
        """Store the results, the log, the endpoints' failure runs and what disables them, in
        one transaction; return the ids of the endpoints disabled."""
        if not results:
            return []
        by_endpoint: dict[int, list[Result]] = defaultdict(list)
        for x in sorted(results, key=lambda x: x.at_us):
            by_endpoint[x.due.endpoint_id].append(x)
        with self.engine.begin() as conn:
            # One statement for the batch (executemany), guarded by the attempt it recorded:
            # a delivery replayed meanwhile is left as the replay made it.
            conn.execute(
                _d.update()
                .where(_d.c.id == sa.bindparam("b_id"), _d.c.attempts == sa.bindparam("b_attempt"))
                .values(state=sa.bindparam("b_state"), next_attempt_us=sa.bindparam("b_next"),
                        last_attempt_us=sa.bindparam("b_at"), last_status=sa.bindparam("b_status"),
                        last_error=sa.bindparam("b_error"), completed_us=sa.bindparam("b_done")),
                [{"b_id": x.due.id, "b_attempt": x.due.attempt, "b_state": x.state,
                  "b_next": x.next_attempt_us, "b_at": x.at_us, "b_status": x.status,
                  "b_error": x.error,
                  "b_done": now_us if x.state in ("succeeded", "failed") else None}
                 for x in results],
            )  # fmt: skip
            conn.execute(
                _a.insert(),
                [{"delivery_id": x.due.id, "endpoint_id": x.due.endpoint_id,
                  "attempt": x.due.attempt, "at_us": x.at_us, "status": x.status,
                  "error": x.error, "duration_us": x.duration_us, "response": x.response}
                 for x in results],
            )  # fmt: skip
            gone: list[int] = []
            for eid, xs in by_endpoint.items():
                ok = [i for i, x in enumerate(xs) if x.state == "succeeded"]
                failed = xs[ok[-1] + 1 :] if ok else xs
                if ok:  # the run starts over after the last success
                    conn.execute(_e.update().where(_e.c.id == eid).values(
                        failures=len(failed),
                        failing_since_us=failed[0].at_us if failed else None))  # fmt: skip
                elif failed:
                    conn.execute(_e.update().where(_e.c.id == eid).values(
                        failures=_e.c.failures + len(failed),
                        failing_since_us=sa.func.coalesce(_e.c.failing_since_us,
                                                          failed[0].at_us)))  # fmt: skip
                if any(x.gone for x in xs):
                    gone.append(eid)
            disabled = self._disable(conn, gone, GONE, now_us)
            if policy.failures > 0:
                run = (
                    _e.c.id.in_(list(by_endpoint)), _e.c.failures >= policy.failures,
                    _e.c.failing_since_us <= now_us - policy.after_us,
                )  # fmt: skip
                reason = (
                    f"disabled after {policy.failures} or more failed attempts in a row over "
                    f"{policy.after_us // 3_600_000_000} h or more"
                )
                candidates = [
                    i for (i,) in conn.execute(sa.select(_e.c.id).where(*run, _e.c.enabled))
                ]
                disabled += self._disable(conn, candidates, reason, now_us)
        return disabled

    def _disable(self, conn: sa.Connection, ids: list[int], reason: str, now_us: int) -> list[int]:
        # Disable the enabled ones among `ids`, each with a webhook.disabled event.
        if not ids:
            return []
        rows = list(
            conn.execute(
                _e.update()
                .where(_e.c.id.in_(ids), _e.c.enabled)
                .values(enabled=False, disabled_reason=reason, disabled_us=now_us,
                        updated_us=now_us)
                .returning(_e.c.id, _e.c.public_id, _e.c.workspace_id, _e.c.url, _e.c.failures,
                           _e.c.failing_since_us)
            )
        )  # fmt: skip
        new = [
            ev.event(r.workspace_id, ev.ENDPOINT_DISABLED, f"{r.public_id}/{now_us}", now_us, {
                "endpoint": r.public_id, "url": r.url, "reason": reason, "failures": r.failures,
                "failing_since": None if r.failing_since_us is None else ev.iso(r.failing_since_us),
            })
            for r in rows
        ]  # fmt: skip
        append_events(conn, new, now_us)
        return [r.id for r in rows]

    def deliveries_page(
        self, workspace_id: int, endpoint_id: int, after: str | None, limit: int,
        state: str | None,
    ) -> list[Delivery]:  # fmt: skip
        """An endpoint's deliveries, newest first, after the one named `after`."""
        q = SHOWN.where(_d.c.endpoint_id == endpoint_id)
        if state is not None:
            q = q.where(_d.c.state == state)
        with self.engine.connect() as conn:
            if after is not None:
                after_id = conn.execute(
                    sa.select(_d.c.id).where(_d.c.workspace_id == workspace_id,
                                             _d.c.public_id == after)
                ).scalar()  # fmt: skip
                q = q.where(_d.c.id < (after_id or 0))
            rows = conn.execute(q.order_by(_d.c.id.desc()).limit(limit), {"ws": workspace_id})
            return [_delivery(r) for r in rows]

    def delivery(self, workspace_id: int, public_id: str) -> tuple[Delivery, list[Attempt]] | None:
        """A delivery of the workspace with its attempts, oldest first."""
        with self.engine.connect() as conn:
            r = conn.execute(SHOWN.where(_d.c.public_id == public_id), {"ws": workspace_id}).first()
            if r is None:
                return None
            attempts = [
                Attempt(a.attempt, a.at_us, a.status, a.error, a.duration_us, a.response)
                for a in conn.execute(
                    sa.select(_a).where(_a.c.delivery_id == r.id).order_by(_a.c.id)
                )
            ]
        return _delivery(r), attempts

    def replay(self, workspace_id: int, public_ids: Sequence[str], now_us: int) -> int:
        """Make these deliveries pending and due now, attempts from 0; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    _d.update()
                    .where(_d.c.workspace_id == workspace_id, _d.c.public_id.in_(list(public_ids)))
                    .values(state="pending", attempts=0, next_attempt_us=now_us, completed_us=None)
                ).rowcount
            )

    def replay_since(self, endpoint: Endpoint, since_us: int, now_us: int) -> int:
        """Create or reset a delivery, due now, for every event of the endpoint's workspace and
        types at or after `since_us` that it wants; return how many."""
        q = (
            sa.select(_ev.c.id, _ev.c.type, _ev.c.payload)
            .where(_ev.c.workspace_id == endpoint.workspace_id,
                   _ev.c.type.in_(list(endpoint.event_types)), _ev.c.occurred_us >= since_us)
            .order_by(_ev.c.id)
        )  # fmt: skip
        with self.engine.begin() as conn:
            ids = [
                r.id for r in conn.execute(q)
                if ev.wants(endpoint.event_types, endpoint.humans_only, endpoint.provisional,
                            r.type, r.payload)
            ]  # fmt: skip
            for chunk in chunks(ids):
                conn.execute(
                    _d.update()
                    .where(_d.c.endpoint_id == endpoint.id, _d.c.event_id.in_(chunk))
                    .values(state="pending", attempts=0, next_attempt_us=now_us, completed_us=None)
                )
                conn.execute(
                    insert_ignore(conn, _d),
                    [{"public_id": new_public_id(DELIVERY_PREFIX),
                      "workspace_id": endpoint.workspace_id, "endpoint_id": endpoint.id,
                      "event_id": i, "state": "pending", "attempts": 0,
                      "next_attempt_us": now_us, "created_us": now_us} for i in chunk],
                )  # fmt: skip
        return len(ids)
