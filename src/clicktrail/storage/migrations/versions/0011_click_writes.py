"""click inbox: cheap click writes, moved to clicks by the classification job

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "click_inbox",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_click_inbox")),
    )


def downgrade() -> None:
    op.drop_table("click_inbox")
