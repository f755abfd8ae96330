"""campaign variants: the variant each message carries

* `messages.variant`: the name of the campaign variant the message's text is (an A/B test,
  docs/experiments.md), NULL for messages of campaigns without variants and test sends. The
  variants themselves, their shares and the seed of the draw are in the campaign's options.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("variant", sa.String(32), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), not a batch rebuild: rebuilding `messages`
    # drops the table, which the foreign keys of clicks and credits refuse on SQLite.
    op.drop_column("messages", "variant")
