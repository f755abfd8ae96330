"""touchpoints: other channels' touches of contacts, for multi-touch attribution

* `touchpoints`: one row per touch of another channel (email, paid social, web, …), unique per
  workspace on its `dedup_key` (the caller's touch id, else the public id) forever
  (docs/touchpoints.md). SMS touches stay in `messages` and `clicks`.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "touchpoints",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("contact_id", _BigId, nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("campaign", sa.String(128)),
        sa.Column("source", sa.String(128)),
        sa.Column("touch_id", sa.String(128)),
        sa.Column("dedup_key", sa.String(160), nullable=False),
        sa.Column("meta", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoints")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_touchpoints_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_touchpoints_contact_id_contacts")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_touchpoints_public_id")),
        sa.UniqueConstraint(
            "workspace_id", "dedup_key", name=op.f("uq_touchpoints_workspace_id_dedup_key")
        ),
    )
    op.create_index(op.f("ix_touchpoints_workspace_id_id"), "touchpoints", ["workspace_id", "id"])
    op.create_index(
        op.f("ix_touchpoints_contact_id_occurred_us"), "touchpoints", ["contact_id", "occurred_us"]
    )


def downgrade() -> None:
    op.drop_table("touchpoints")
