"""provider accounts per workspace and provider fields on messages

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_providers",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", _ID, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("unknown_receipts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_receipt_us", sa.BigInteger()),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_providers")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sms_providers_workspace_id_workspaces"),
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_sms_providers_public_id")),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_sms_providers_workspace_id_name")
        ),
    )
    op.create_index(op.f("ix_sms_providers_kind"), "sms_providers", ["kind"])
    op.add_column("messages", sa.Column("error_message", sa.Text()))
    # Receipts name messages by the provider's id (Twilio's SID, an aggregator's message id).
    op.create_index(op.f("ix_messages_provider_message_id"), "messages", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_provider_message_id"), table_name="messages")
    # Native DROP COLUMN (SQLite 3.35+): a batch rebuild of `messages` would drop a table that
    # tokens and events refer to, which SQLite refuses with foreign keys on.
    op.execute("ALTER TABLE messages DROP COLUMN error_message")
    op.drop_index(op.f("ix_sms_providers_kind"), table_name="sms_providers")
    op.drop_table("sms_providers")
