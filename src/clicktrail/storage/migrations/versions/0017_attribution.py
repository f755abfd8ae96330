"""attribution: settings per workspace and campaign, the revision guard, conversion credits

* `attribution_settings`: model and windows of a workspace (`campaign_id` 0) or a campaign;
  NULL inherits.
* `attribution_state`: a workspace's attribution revision (up with every change that calls
  for re-attribution) and the newest one fully re-attributed.
* `conversion_credits`: the credit each model gives for each conversion.
* `ix_messages_contact_id`: a converting contact's messages.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attribution_settings",
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("campaign_id", _BigId, nullable=False),
        sa.Column("model", sa.String(16)),
        sa.Column("click_window_us", sa.BigInteger()),
        sa.Column("delivery_window_us", sa.BigInteger()),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "campaign_id", name=op.f("pk_attribution_settings")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_attribution_settings_workspace_id_workspaces"),
        ),
    )  # fmt: skip
    op.create_table(
        "attribution_state",
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("attributed_revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_attribution_state")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name=op.f("fk_attribution_state_workspace_id_workspaces"),
        ),
    )  # fmt: skip
    op.create_table(
        "conversion_credits",
        sa.Column("conversion_id", _BigId, nullable=False),
        sa.Column("model", sa.String(16), nullable=False),
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("contact_id", _BigId),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("campaign_id", _BigId),
        sa.Column("message_id", _BigId),
        sa.Column("link_id", _BigId),
        sa.Column("click_row", _BigId),
        sa.Column("credit", sa.Float(), nullable=False),
        sa.Column("delay_us", sa.BigInteger()),
        sa.Column("conversion_us", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("conversion_id", "model", name=op.f("pk_conversion_credits")),
    )
    op.create_index(
        "ix_conversion_credits_campaign", "conversion_credits",
        ["campaign_id", "model", "link_id"],
    )  # fmt: skip
    op.create_index(
        "ix_conversion_credits_workspace", "conversion_credits", ["workspace_id", "settled"]
    )
    op.create_index("ix_messages_contact_id", "messages", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_contact_id", table_name="messages")
    op.drop_table("conversion_credits")
    op.drop_table("attribution_state")
    op.drop_table("attribution_settings")
