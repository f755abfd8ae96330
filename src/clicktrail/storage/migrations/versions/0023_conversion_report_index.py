"""conversions report: a covering index over a campaign's credits

`ix_conversion_credits_report` (campaign, model, kind, link, delay, contact, credit, settled,
conversion) replaces `ix_conversion_credits_campaign` (campaign, model, link): the conversions
report sums a campaign's credits per link in SQL reading only this index (and each
conversion's value by primary key), and picks the delays its percentiles need in index order
(storage/attribution.py, issue 16).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

COLUMNS = ["campaign_id", "model", "kind", "link_id", "delay_us", "contact_id", "credit",
           "settled", "conversion_id"]  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_conversion_credits_report", "conversion_credits", COLUMNS)
    op.drop_index("ix_conversion_credits_campaign", table_name="conversion_credits")


def downgrade() -> None:
    op.create_index(
        "ix_conversion_credits_campaign", "conversion_credits", ["campaign_id", "model", "link_id"]
    )
    op.drop_index("ix_conversion_credits_report", table_name="conversion_credits")
