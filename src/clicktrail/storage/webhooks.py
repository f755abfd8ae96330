"""Webhook endpoints on SQL (`webhook_endpoints`, migration 0022).

Implements `services.webhooks.WebhookStore`. Every query of a workspace's endpoints is scoped to
it. Each public method is one transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.services.webhooks import Endpoint, EndpointChange
from clicktrail.storage import tables as t

_e, _d, _a = t.webhook_endpoints, t.webhook_deliveries, t.webhook_attempts

# A workspace's endpoint by public id.
ENDPOINT = sa.select(_e).where(
    _e.c.workspace_id == sa.bindparam("ws"), _e.c.public_id == sa.bindparam("pid")
)
# Its endpoints in creation order.
ENDPOINTS = sa.select(_e).where(_e.c.workspace_id == sa.bindparam("ws")).order_by(_e.c.id)
ENDPOINT_ID = sa.select(_e.c.id).where(
    _e.c.workspace_id == sa.bindparam("ws"), _e.c.public_id == sa.bindparam("pid")
)
# Counting a workspace's endpoints locks them (PostgreSQL): two creations at once cannot both
# take the last place.
LOCK_ENDPOINTS = sa.select(_e.c.id).where(_e.c.workspace_id == sa.bindparam("ws")).with_for_update()


def endpoint_of(r: Any) -> Endpoint:
    """The `Endpoint` of a `webhook_endpoints` row."""
    return Endpoint(
        id=r.id, public_id=r.public_id, workspace_id=r.workspace_id, url=r.url,
        description=r.description, event_types=tuple(r.event_types),
        humans_only=bool(r.humans_only), provisional=bool(r.provisional),
        enabled=bool(r.enabled), disabled_reason=r.disabled_reason, disabled_us=r.disabled_us,
        secret=r.secret, old_secret=r.old_secret, old_secret_until_us=r.old_secret_until_us,
        failures=r.failures, failing_since_us=r.failing_since_us, created_us=r.created_us,
        updated_us=r.updated_us,
    )  # fmt: skip


class WebhookQueries:
    """Webhook endpoints on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add_endpoint(self, endpoint: Endpoint, max_endpoints: int) -> Endpoint:
        """Store `endpoint` and return it as stored; `Conflict` past `max_endpoints`."""
        row = {k: v for k, v in dataclasses.asdict(endpoint).items() if k != "id"}
        row["event_types"] = list(endpoint.event_types)
        with self.engine.begin() as conn:
            held = len(conn.execute(LOCK_ENDPOINTS, {"ws": endpoint.workspace_id}).all())
            if held >= max_endpoints:
                raise Conflict(
                    f"a workspace has at most {max_endpoints} webhook endpoints; delete one first",
                    field="url",
                )
            conn.execute(_e.insert(), row)
            r = conn.execute(ENDPOINT, {"ws": endpoint.workspace_id, "pid": endpoint.public_id})
            return endpoint_of(r.one())

    def endpoint(self, workspace_id: int, public_id: str) -> Endpoint | None:
        """Return the workspace's endpoint `public_id`, None when it has none by that id."""
        with self.engine.connect() as conn:
            r = conn.execute(ENDPOINT, {"ws": workspace_id, "pid": public_id}).first()
        return None if r is None else endpoint_of(r)

    def endpoints_page(self, workspace_id: int, after: str | None, limit: int) -> list[Endpoint]:
        """Return up to `limit` endpoints after the one named `after`, oldest first."""
        q = ENDPOINTS
        with self.engine.connect() as conn:
            if after is not None:
                after_id = conn.execute(ENDPOINT_ID, {"ws": workspace_id, "pid": after}).scalar()
                q = q.where(_e.c.id > (after_id or 0))
            return [endpoint_of(r) for r in conn.execute(q.limit(limit), {"ws": workspace_id})]

    def update_endpoint(
        self, workspace_id: int, public_id: str, change: EndpointChange, now_us: int
    ) -> Endpoint | None:
        """Apply `change`; enabling clears the failure run and why it was disabled."""
        values: dict[str, Any] = {"updated_us": now_us}
        if change.url is not None:
            values["url"] = change.url
        if change.event_types is not None:
            values["event_types"] = list(change.event_types)
        if change.description is not None:
            values["description"] = change.description
        if change.humans_only is not None:
            values["humans_only"] = change.humans_only
        if change.provisional is not None:
            values["provisional"] = change.provisional
        if change.enabled is True:
            values.update(enabled=True, disabled_reason=None, disabled_us=None, failures=0,
                          failing_since_us=None)  # fmt: skip
        elif change.enabled is False:
            values.update(enabled=False, disabled_reason="disabled by its owner",
                          disabled_us=now_us)  # fmt: skip
        with self.engine.begin() as conn:
            where = (_e.c.workspace_id == workspace_id, _e.c.public_id == public_id)
            if change.enabled is False:  # keep the first reason and time it was disabled
                kept = ("enabled", "disabled_reason", "disabled_us")
                rest = {k: v for k, v in values.items() if k not in kept}
                conn.execute(_e.update().where(*where, sa.not_(_e.c.enabled)).values(**rest))
                conn.execute(_e.update().where(*where, _e.c.enabled).values(**values))
            else:
                conn.execute(_e.update().where(*where).values(**values))
            r = conn.execute(ENDPOINT, {"ws": workspace_id, "pid": public_id}).first()
        return None if r is None else endpoint_of(r)

    def rotate_secret(
        self, workspace_id: int, public_id: str, secret: str, until_us: int, now_us: int
    ) -> Endpoint | None:
        """Make `secret` the endpoint's secret, the current one signing until `until_us`."""
        with self.engine.begin() as conn:
            conn.execute(
                _e.update()
                .where(_e.c.workspace_id == workspace_id, _e.c.public_id == public_id)
                .values(old_secret=_e.c.secret, old_secret_until_us=until_us, secret=secret,
                        updated_us=now_us)
            )  # fmt: skip
            r = conn.execute(ENDPOINT, {"ws": workspace_id, "pid": public_id}).first()
        return None if r is None else endpoint_of(r)

    def delete_endpoint(self, workspace_id: int, public_id: str) -> bool:
        """Delete the endpoint, its deliveries and their attempts; False when not found."""
        with self.engine.begin() as conn:
            eid = conn.execute(ENDPOINT_ID, {"ws": workspace_id, "pid": public_id}).scalar()
            if eid is None:
                return False
            conn.execute(_a.delete().where(_a.c.endpoint_id == eid))
            conn.execute(_d.delete().where(_d.c.endpoint_id == eid))
            conn.execute(_e.delete().where(_e.c.id == eid))
            return True
