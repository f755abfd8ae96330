"""report covering indexes and the per-country message rollup

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_clicks_report",
        "clicks",
        ["campaign_id", "message_id", "link_id", "verdict", "is_click", "at_us"],
    )
    op.create_index(
        "ix_clicks_report_ua",
        "clicks",
        ["campaign_id", "user_agent", "link_id", "verdict", "is_click"],
    )
    op.create_table(
        "report_country_counts",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_report_country_counts_campaign_id_campaigns",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "country", "status", name="pk_report_country_counts"
        ),
    )


def downgrade() -> None:
    op.drop_table("report_country_counts")
    op.drop_index("ix_clicks_report_ua", table_name="clicks")
    op.drop_index("ix_clicks_report", table_name="clicks")
