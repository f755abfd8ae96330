"""durable send jobs: pause, resume, cancel, retries, rate, quiet hours, test sends

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "send_jobs",
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("quiet_hours", sa.String(16)),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("max_age_s", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("wrapped_through", _ID, nullable=False, server_default="0"),
        sa.Column("wrapped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped_opted_out", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped_invalid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until_us", sa.BigInteger()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("finished_us", sa.BigInteger()),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_send_jobs_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_send_jobs")),
    )
    op.create_index(op.f("ix_send_jobs_state"), "send_jobs", ["state"])
    # Plain ADD COLUMNs (constant defaults): no table rewrite on SQLite or PostgreSQL. (Not in
    # a batch: SQLite's batch mode would copy the table for the Boolean, and cannot drop a
    # table that tokens and events point at while foreign keys are on.)
    op.add_column(
        "messages", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("messages", sa.Column("next_attempt_us", sa.BigInteger()))
    op.add_column("messages", sa.Column("first_attempt_us", sa.BigInteger()))
    op.add_column(
        "messages", sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # The send loop claims queued messages in id order: with `id` in the index PostgreSQL reads
    # them in order instead of sorting every queued message of the campaign at each claim.
    op.drop_index("ix_messages_campaign_id_status", table_name="messages")
    op.create_index("ix_messages_campaign_id_status", "messages", ["campaign_id", "status", "id"])
    is_test = sa.column("is_test", sa.Boolean())
    op.create_index(
        "ix_messages_is_test",
        "messages",
        ["campaign_id", "status"],
        sqlite_where=is_test,
        postgresql_where=is_test,
    )
    # Campaigns left 'sending' by an earlier version resume as a job: wrapping goes on after
    # the last contact that has a message, as it did before.
    op.execute(
        "INSERT INTO send_jobs (campaign_id, state, provider, rate, max_attempts, max_age_s, "
        "origin, wrapped_through, wrapped, created_us, updated_us) "
        "SELECT c.id, 'running', 'outbox', 10, 8, 21600, 'cli', "
        "COALESCE((SELECT MAX(m.contact_id) FROM messages m WHERE m.campaign_id = c.id), 0), "
        "(SELECT COUNT(*) FROM messages m WHERE m.campaign_id = c.id), "
        "c.created_us, c.created_us FROM campaigns c WHERE c.status = 'sending'"
    )


def downgrade() -> None:
    op.drop_index("ix_messages_is_test", table_name="messages")
    op.drop_index("ix_messages_campaign_id_status", table_name="messages")
    op.create_index("ix_messages_campaign_id_status", "messages", ["campaign_id", "status"])
    # Statuses this version does not know become the nearest it does.
    op.execute("UPDATE messages SET status = 'queued' WHERE status IN ('unknown')")
    op.execute("UPDATE messages SET status = 'failed' WHERE status IN ('cancelled', 'skipped')")
    # Test sends go with the column that told them apart.
    for table in ("clicks", "message_events", "tokens"):
        op.execute(
            f"DELETE FROM {table} WHERE message_id IN (SELECT id FROM messages WHERE is_test)"
        )
    op.execute("DELETE FROM messages WHERE is_test")
    # Native DROP COLUMN (SQLite 3.35+): a batch rebuild of `messages` would have to drop a table
    # that tokens and events refer to, which SQLite refuses with foreign keys on.
    for column in ("is_test", "first_attempt_us", "next_attempt_us", "attempts"):
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")
    op.drop_index(op.f("ix_send_jobs_state"), table_name="send_jobs")
    op.drop_table("send_jobs")
