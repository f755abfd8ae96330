"""automations: a workspace's rules (trigger, delay, conditions, action)

* `automations`: one row per rule, its name unique in the workspace, `rule` the checked rule
  as JSON (domain/automations.rule_json), enabled or not (issue 17).

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_automations_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_automations_public_id")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_automations_workspace_id_name")),
    )
    op.create_index(
        op.f("ix_automations_workspace_id_id"), "automations", ["workspace_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_automations_workspace_id_id"), table_name="automations")
    op.drop_table("automations")
