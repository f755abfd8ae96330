"""Automations on SQL (`automations`, migration 0025).

Implements `services.automations.AutomationStore`. Every query is scoped to the workspace.
Each public method is one transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clicktrail.domain.automations import rule_json, rule_of
from clicktrail.domain.errors import Conflict
from clicktrail.services.automations import Automation, AutomationChange
from clicktrail.storage import tables as t
from clicktrail.storage.automation_runs import RunQueries

_a = t.automations

# A workspace's automation by public id.
AUTOMATION = sa.select(_a).where(
    _a.c.workspace_id == sa.bindparam("ws"), _a.c.public_id == sa.bindparam("pid")
)
AUTOMATION_ID = sa.select(_a.c.id).where(
    _a.c.workspace_id == sa.bindparam("ws"), _a.c.public_id == sa.bindparam("pid")
)
# Its automations in creation order.
AUTOMATIONS = sa.select(_a).where(_a.c.workspace_id == sa.bindparam("ws")).order_by(_a.c.id)
# Another automation of the workspace with this name.
NAME_TAKEN = sa.select(_a.c.id).where(
    _a.c.workspace_id == sa.bindparam("ws"), _a.c.name == sa.bindparam("name"),
    _a.c.public_id != sa.bindparam("pid"),
)  # fmt: skip
# Counting a workspace's automations locks them (PostgreSQL): two creations at once cannot both
# take the last place.
LOCK_AUTOMATIONS = (
    sa.select(_a.c.id).where(_a.c.workspace_id == sa.bindparam("ws")).with_for_update()
)


def automation_of(r: Any) -> Automation:
    """The `Automation` of an `automations` row."""
    return Automation(
        id=r.id, public_id=r.public_id, workspace_id=r.workspace_id, name=r.name,
        enabled=bool(r.enabled), rule=rule_of(r.rule), created_us=r.created_us,
        updated_us=r.updated_us,
    )  # fmt: skip


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an automation named {name!r} exists in this workspace", field="name")


class AutomationQueries:
    """Automations on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.runs = RunQueries(engine)  # their runs: scheduled, carried out (`.fire`), listed

    def add_automation(self, automation: Automation, max_automations: int) -> Automation:
        """Store `automation` and return it as stored; `Conflict` for a name in use or past
        `max_automations`."""
        a = automation
        with self.engine.begin() as conn:
            held = len(conn.execute(LOCK_AUTOMATIONS, {"ws": a.workspace_id}).all())
            if held >= max_automations:
                raise Conflict(
                    f"a workspace has at most {max_automations} automations; delete one first",
                    field="name",
                )
            if conn.execute(NAME_TAKEN, {"ws": a.workspace_id, "name": a.name, "pid": ""}).first():
                raise _name_taken(a.name)
            row = {"public_id": a.public_id, "workspace_id": a.workspace_id, "name": a.name,
                   "enabled": a.enabled, "rule": rule_json(a.rule), "created_us": a.created_us,
                   "updated_us": a.updated_us}  # fmt: skip
            try:
                conn.execute(_a.insert(), row)
            except sa.exc.IntegrityError:  # the same name created at the same time
                raise _name_taken(a.name) from None
            r = conn.execute(AUTOMATION, {"ws": a.workspace_id, "pid": a.public_id}).one()
            return automation_of(r)

    def automation(self, workspace_id: int, public_id: str) -> Automation | None:
        """Return the workspace's automation `public_id`, None when it has none by that id."""
        with self.engine.connect() as conn:
            r = conn.execute(AUTOMATION, {"ws": workspace_id, "pid": public_id}).first()
        return None if r is None else automation_of(r)

    def automations_page(
        self, workspace_id: int, after: str | None, limit: int
    ) -> list[Automation]:
        """Return up to `limit` automations after the one named `after`, oldest first."""
        q = AUTOMATIONS
        with self.engine.connect() as conn:
            if after is not None:
                after_id = conn.execute(AUTOMATION_ID, {"ws": workspace_id, "pid": after}).scalar()
                q = q.where(_a.c.id > (after_id or 0))
            return [automation_of(r) for r in conn.execute(q.limit(limit), {"ws": workspace_id})]

    def update_automation(
        self, workspace_id: int, public_id: str, change: AutomationChange, now_us: int
    ) -> Automation | None:
        """Apply `change`; return the automation as it is now (None: not found)."""
        values: dict[str, Any] = {"updated_us": now_us}
        if change.name is not None:
            values["name"] = change.name
        if change.enabled is not None:
            values["enabled"] = change.enabled
        if change.rule is not None:
            values["rule"] = rule_json(change.rule)
        with self.engine.begin() as conn:
            if change.name is not None:
                args = {"ws": workspace_id, "name": change.name, "pid": public_id}
                if conn.execute(NAME_TAKEN, args).first():
                    raise _name_taken(change.name)
            conn.execute(
                _a.update()
                .where(_a.c.workspace_id == workspace_id, _a.c.public_id == public_id)
                .values(**values)
            )
            r = conn.execute(AUTOMATION, {"ws": workspace_id, "pid": public_id}).first()
        return None if r is None else automation_of(r)

    def delete_automation(self, workspace_id: int, public_id: str) -> bool:
        """Delete the automation and its runs; False when not found."""
        with self.engine.begin() as conn:
            found = conn.execute(AUTOMATION_ID, {"ws": workspace_id, "pid": public_id}).scalar()
            if found is not None:  # its runs go with it (pending ones never fire)
                conn.execute(
                    t.automation_runs.delete().where(t.automation_runs.c.automation_id == found)
                )
            gone = conn.execute(
                _a.delete().where(_a.c.workspace_id == workspace_id, _a.c.public_id == public_id)
            ).rowcount
        return bool(gone)
