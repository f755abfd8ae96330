"""campaign holdouts: the draw of each campaign's holdout and its held-out contacts

* `holdout_draws`: one row per campaign whose send drew a holdout: seed, share, stratification,
  how many contacts were eligible and held out, per stratum, and when.
* `campaign_holdouts`: the held-out contacts (and their stratum); the send skips them.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "holdout_draws",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("stratify", sa.String(200)),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("strata", sa.JSON(), nullable=False),
        sa.Column("drawn_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_holdout_draws")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_holdout_draws_campaign_id_campaigns")
        ),
    )
    op.create_table(
        "campaign_holdouts",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("stratum", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "contact_id", name=op.f("pk_campaign_holdouts")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_holdouts_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_campaign_holdouts_contact_id_contacts")
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_holdouts")
    op.drop_table("holdout_draws")
