"""per-recipient click rollup of the full report, backfilled

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_clicks",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("flags", sa.SmallInteger(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_us", sa.BigInteger()),
        sa.Column("last_us", sa.BigInteger()),
        sa.Column("first_delay_us", sa.BigInteger()),
        sa.Column("first_bucket", sa.SmallInteger()),
        sa.PrimaryKeyConstraint("campaign_id", "message_id", name="pk_message_clicks"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_message_clicks_flags",
        "message_clicks",
        ["campaign_id", "country", "flags", "first_bucket"],
    )
    op.create_index(
        "ix_message_clicks_first",
        "message_clicks",
        ["campaign_id", "first_bucket", "first_delay_us"],
    )
    op.create_table(
        "message_link_clicks",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("counted", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "link_id", name="pk_message_link_clicks"
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_message_link_clicks_link",
        "message_link_clicks",
        ["campaign_id", "link_id", "counted"],
    )
    op.create_table(
        "message_click_buckets",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "bucket", name="pk_message_click_buckets"
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_message_click_buckets_bucket",
        "message_click_buckets",
        ["campaign_id", "bucket", "clicks"],
    )
    # Backfill from the stored clicks (the same code that maintains the rollup afterwards).
    from clicktrail.storage.rollup import rebuild_click_rollup

    rebuild_click_rollup(op.get_bind())


def downgrade() -> None:
    op.drop_table("message_click_buckets")
    op.drop_table("message_link_clicks")
    op.drop_table("message_clicks")
