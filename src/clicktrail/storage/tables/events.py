"""The tables of events and webhooks (issue 17, migration 0022): the event outbox, its
consumers' cursors, webhook endpoints, their deliveries and every attempt; automations (0025).

The same `metadata` as `tables.core`; conventions there (times in µs, internal integer keys).
"""

from __future__ import annotations

import sqlalchemy as sa

from clicktrail.storage.tables.core import BigId, Micros, id_column, metadata

# The outbox: one row per fact, written in the fact's transaction (domain/events.py), never
# changed. `key` (``type/what``) makes writing idempotent. `txid` is the writing transaction's
# id on PostgreSQL (0 on SQLite, whose writers commit in id order): consumers read in
# (txid, id) order only below the oldest transaction still running, so a row committed late
# with a smaller id is never skipped (storage/events.py). AUTOINCREMENT on SQLite: an id is
# never reused, even after the newest row is pruned.
events = sa.Table(
    "events",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("occurred_us", Micros, nullable=False),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("txid", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index(None, "txid", "id"),
    sa.Index(None, "workspace_id", "type", "occurred_us"),
    sqlite_autoincrement=True,
)

# How far each consumer of the outbox got: the (txid, id) of the last event it handled.
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("consumer", sa.String(40), primary_key=True),
    sa.Column("txid", sa.BigInteger, nullable=False),
    sa.Column("event_id", BigId, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
)

# A workspace's webhook endpoints (services/webhooks.py). `secret` is kept as it is (signing
# needs it); during a rotation `old_secret` signs too until `old_secret_until_us`. `failures`
# counts failed attempts in a row since `failing_since_us` (reset by a success): past the
# operator's limits the endpoint is disabled (`disabled_reason`).
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("humans_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.String(300)),
    sa.Column("disabled_us", Micros),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("old_secret", sa.String(100)),
    sa.Column("old_secret_until_us", Micros),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failing_since_us", Micros),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.Index(None, "workspace_id", "id"),
)

# One delivery per endpoint and event: `pending` until it succeeds, fails for good (`failed`:
# the schedule ran out, or 410) or is replayed. `next_attempt_us` is also the lease of a
# claimed delivery (claiming moves it past the attempt's timeout): a worker killed mid-send
# leaves it to be claimed again, with the same webhook-id.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("endpoint_id", BigId, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_us", Micros),
    sa.Column("last_attempt_us", Micros),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("completed_us", Micros),
    sa.UniqueConstraint("endpoint_id", "event_id"),
    sa.Index(None, "state", "next_attempt_us"),
    sa.Index(None, "endpoint_id", "id"),
)

# The delivery log: every attempt, its response status (None: no response) or error, how long
# it took and the start of the response body.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    id_column(),
    sa.Column("delivery_id", BigId, sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("endpoint_id", BigId, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at_us", Micros, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("error", sa.String(300)),
    sa.Column("duration_us", Micros, nullable=False),
    sa.Column("response", sa.String(500)),
    sa.Index(None, "delivery_id", "id"),
    sa.Index(None, "endpoint_id", "id"),
)

# A workspace's automations (services/automations.py, domain/automations.py): a name, whether
# it is enabled, and its rule (trigger, delay, conditions, action) as `rule_json` writes it.
automations = sa.Table(
    "automations",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("rule", sa.JSON, nullable=False),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
    sa.Index(None, "workspace_id", "id"),
    # The outbox's subscribers: workspaces with an enabled automation (migration 0027).
    sa.Index("ix_automations_enabled_workspace", "enabled", "workspace_id"),
)

# An automation's runs (services/automation_runs.py, migration 0027): one per rule, contact and
# trigger event (`run_key`, domain/automations.run_key), scheduled from the event outbox and
# carried out when due under a lease (`claimed_by`, `claim_until_us`). `state`: pending, fired,
# cancelled, skipped or failed, with the `reason`; `result`: what a fire made (a message's
# public id). `campaign` / `click_id`: the trigger event's, for the send and the bot check.
automation_runs = sa.Table(
    "automation_runs",
    metadata,
    id_column(),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("workspace_id", BigId, sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("automation_id", BigId, sa.ForeignKey("automations.id"), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("campaign", sa.String(64)),
    sa.Column("trigger_key", sa.String(200), nullable=False),
    sa.Column("run_key", sa.String(300), nullable=False, unique=True),
    sa.Column("trigger_us", Micros, nullable=False),
    sa.Column("due_us", Micros, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("reason", sa.String(300)),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claim_until_us", Micros),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fired_us", Micros),
    sa.Column("result", sa.String(64)),
    sa.Column("created_us", Micros, nullable=False),
    sa.Column("updated_us", Micros, nullable=False),
    sa.Index("ix_automation_runs_due", "state", "due_us"),
    sa.Index("ix_automation_runs_contact", "workspace_id", "phone", "state"),
    sa.Index(None, "automation_id", "id"),
)
