"""automation_runs: the runs automations schedule from the event outbox

* `automation_runs`: one row per rule, contact and trigger event (`run_key` unique, so a
  replayed event never schedules twice), its due time, state (pending, fired, cancelled,
  skipped, failed) and reason, the lease of the worker carrying it out, and what it made
  (issue 17). Indexed for the due scan (state, due_us), for cancellations and the frequency
  cap (workspace_id, phone, state), and for an automation's listing (automation_id, id).

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "automation_runs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("automation_id", BigId, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("trigger_key", sa.String(length=200), nullable=False),
        sa.Column("run_key", sa.String(length=300), nullable=False),
        sa.Column("trigger_us", sa.BigInteger(), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claim_until_us", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fired_us", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.String(length=64), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_automation_runs_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["automation_id"], ["automations.id"],
            name=op.f("fk_automation_runs_automation_id_automations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint("public_id", name=op.f("uq_automation_runs_public_id")),
        sa.UniqueConstraint("run_key", name=op.f("uq_automation_runs_run_key")),
    )  # fmt: skip
    op.create_index("ix_automation_runs_due", "automation_runs", ["state", "due_us"])
    op.create_index(
        "ix_automation_runs_contact", "automation_runs", ["workspace_id", "phone", "state"]
    )
    op.create_index(
        op.f("ix_automation_runs_automation_id_id"), "automation_runs", ["automation_id", "id"]
    )
    # Outbox subscribers: workspaces with an enabled automation, from an index.
    op.create_index("ix_automations_enabled_workspace", "automations", ["enabled", "workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_automations_enabled_workspace", table_name="automations")
    op.drop_index(op.f("ix_automation_runs_automation_id_id"), table_name="automation_runs")
    op.drop_index("ix_automation_runs_contact", table_name="automation_runs")
    op.drop_index("ix_automation_runs_due", table_name="automation_runs")
    op.drop_table("automation_runs")
