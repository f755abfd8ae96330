"""Automation runs on SQL (`automation_runs`, migration 0027): scheduling from the outbox and
the listing. Implements `services.automation_runs.RunStore`; carrying runs out is
storage/automation_fire.py. Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.automations import Pending, rule_of
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.ids import new_public_id
from clicktrail.services.automation_runs import (
    PENDING,
    RUN_PREFIX,
    ActiveRule,
    NewRun,
    PendingRun,
    Run,
)
from clicktrail.storage import tables as t
from clicktrail.storage.automation_fire import FireQueries
from clicktrail.storage.events import EventQueries
from clicktrail.storage.sql import chunks, insert_ignore

_r, _a = t.automation_runs, t.automations

# The enabled automations of some workspaces.
ACTIVE = sa.select(_a.c.id, _a.c.workspace_id, _a.c.rule).where(_a.c.enabled).order_by(_a.c.id)
# A workspace's pending runs of some contacts (index ix_automation_runs_contact).
PENDING_RUNS = sa.select(_r.c.id, _r.c.automation_id, _r.c.trigger_key, _r.c.trigger_us,
                         _r.c.phone).where(_r.c.workspace_id == sa.bindparam("ws"),
                                           _r.c.state == PENDING)  # fmt: skip
# Cancel a run that is still pending (one being fired re-checks its conditions itself).
CANCEL = (
    _r.update()
    .where(_r.c.id == sa.bindparam("rid"), _r.c.state == PENDING)
    .values(state="cancelled", reason=sa.bindparam("why"), updated_us=sa.bindparam("now"),
            claimed_by=None, claim_until_us=None)
)  # fmt: skip
# A run as shown, with its automation's public id.
SHOWN = sa.select(_r, _a.c.public_id.label("automation")).join(_a, _a.c.id == _r.c.automation_id)


def run_of(r: Any) -> Run:
    """The `Run` of a `SHOWN` row."""
    return Run(
        r.public_id, r.automation, r.phone, r.campaign, r.trigger_key, r.trigger_us, r.due_us,
        r.state, r.reason, r.attempts, r.fired_us, r.result, r.created_us, r.updated_us,
    )  # fmt: skip


class RunQueries:
    """Automation runs on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.outbox = EventQueries(engine)
        self.fire = FireQueries(engine)  # carrying runs out

    def events_after(self, consumer: str, limit: int) -> list[StoredEvent]:
        """Up to `limit` events after `consumer`'s cursor, in commit order."""
        return self.outbox.events_after(consumer, limit)

    def active_rules(self, workspace_ids: Sequence[int]) -> list[ActiveRule]:
        """The enabled automations of these workspaces, oldest first."""
        out: list[ActiveRule] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(workspace_ids)):
                for r in conn.execute(ACTIVE.where(_a.c.workspace_id.in_(chunk))):
                    out.append(ActiveRule(r.id, r.workspace_id, rule_of(r.rule)))
        return out

    def pending_runs(self, workspace_id: int, phones: Sequence[str]) -> list[PendingRun]:
        """The workspace's pending runs of these contacts."""
        out: list[PendingRun] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(phones)):
                q = PENDING_RUNS.where(_r.c.phone.in_(chunk)).order_by(_r.c.id)
                for r in conn.execute(q, {"ws": workspace_id}):
                    p = Pending(r.trigger_key, r.trigger_us, r.phone)
                    out.append(PendingRun(r.id, r.automation_id, p))
        return out

    def schedule(
        self, consumer: str, new: Sequence[NewRun], cancel: Sequence[tuple[int, str]],
        last: StoredEvent, now_us: int,
    ) -> int:  # fmt: skip
        """Insert `new` runs (run keys that exist skipped), cancel `cancel`'s pending runs and
        move the cursor, in one transaction; return how many runs were inserted."""
        rows = [
            {"public_id": new_public_id(RUN_PREFIX), "workspace_id": x.workspace_id,
             "automation_id": x.automation_id, "phone": x.phone, "campaign": x.campaign,
             "trigger_key": x.trigger_key, "run_key": x.run_key, "trigger_us": x.trigger_us,
             "due_us": x.due_us, "state": x.state, "reason": x.reason, "attempts": 0,
             "created_us": now_us, "updated_us": now_us}
            for x in new
        ]  # fmt: skip
        inserted = 0
        with self.engine.begin() as conn:
            for chunk in chunks(rows):
                res = conn.execute(insert_ignore(conn, _r).returning(_r.c.id), list(chunk))
                inserted += len(res.all())
            if cancel:
                conn.execute(CANCEL, [{"rid": i, "why": why, "now": now_us} for i, why in cancel])
            self.outbox.move_cursor(conn, consumer, last, now_us)
        return inserted

    def runs_page(
        self, automation_id: int, after: str | None, limit: int, state: str | None
    ) -> list[Run]:
        """An automation's runs, newest first, after the one named `after`."""
        q = SHOWN.where(_r.c.automation_id == automation_id)
        if state is not None:
            q = q.where(_r.c.state == state)
        with self.engine.connect() as conn:
            if after is not None:
                after_id = conn.execute(sa.select(_r.c.id).where(_r.c.public_id == after)).scalar()
                q = q.where(_r.c.id < (after_id if after_id is not None else 0))
            return [run_of(r) for r in conn.execute(q.order_by(_r.c.id.desc()).limit(limit))]
