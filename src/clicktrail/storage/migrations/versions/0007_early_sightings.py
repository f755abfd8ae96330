"""early sightings: networks that fetch links before people can

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_sightings",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "campaign_id", name=op.f("pk_early_sightings")),
    )


def downgrade() -> None:
    op.drop_table("early_sightings")
