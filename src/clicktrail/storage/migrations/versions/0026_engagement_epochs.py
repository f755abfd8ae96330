"""engagement epochs: kept scores stamped with the scoring they were computed under

* `engagement_settings.scoring_revision`: changes of a workspace's weights or half-life (not of
  its bands), set to its `revision` for the settings stored before.
* `contact_engagement.revision` becomes the row's scoring epoch
  (`domain.engagement.scoring_epoch`: version 1 × 1,000,000 + the scoring revision), so a row
  kept under revision r becomes 1,000,000 + r; `ix_contact_engagement_epoch` (workspace, epoch,
  contact) finds the stale ones, which the jobs process scores again in the background.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

VERSION_1 = 1_000_000  # domain.engagement.scoring_epoch(0, version=1), fixed here


def upgrade() -> None:
    with op.batch_alter_table("engagement_settings") as batch:
        batch.add_column(
            sa.Column("scoring_revision", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute("UPDATE engagement_settings SET scoring_revision = revision")
    op.execute(f"UPDATE contact_engagement SET revision = revision + {VERSION_1}")
    op.create_index(
        "ix_contact_engagement_epoch",
        "contact_engagement",
        ["workspace_id", "revision", "contact_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_contact_engagement_epoch", table_name="contact_engagement")
    op.execute(
        "UPDATE contact_engagement SET revision = "
        f"CASE WHEN revision >= {VERSION_1} THEN revision % {VERSION_1} ELSE revision END"
    )
    with op.batch_alter_table("engagement_settings") as batch:
        batch.drop_column("scoring_revision")
