"""bot verdicts on stored requests

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clicks") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16), nullable=True))
        batch.add_column(sa.Column("score", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("classifier_version", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_clicks_final_at_us", ["final", "at_us"])


def downgrade() -> None:
    with op.batch_alter_table("clicks") as batch:
        batch.drop_index("ix_clicks_final_at_us")
        for name in ("final", "classifier_version", "reasons", "score", "verdict"):
            batch.drop_column(name)
