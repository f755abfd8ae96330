"""engagement scores: a workspace's scoring settings, each contact's kept score, the contacts
to score again

* `engagement_settings`: weights, half-life and bands per workspace (none: the defaults).
* `contact_engagement`: one row per contact with an event that counts; `score_key` is the
  decayed total's log2 numerator (domain/engagement.py), indexed with the workspace for bands.
* `engagement_dirty`: contacts whose clicks, verdicts or conversions changed, written in the
  same transaction as the change; the jobs process scores them again.

Existing clicks and conversions are scored by `clicktrail engagement recompute` (docs/
segments.md); until then contacts score 0.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "engagement_settings",
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("click_weight", sa.Float(), nullable=False),
        sa.Column("conversion_weight", sa.Float(), nullable=False),
        sa.Column("preview_weight", sa.Float(), nullable=False),
        sa.Column("half_life_days", sa.Float(), nullable=False),
        sa.Column("engaged_min", sa.Float(), nullable=False),
        sa.Column("at_risk_min", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_engagement_settings")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_engagement_settings_workspace_id_workspaces"),
        ),
    )
    op.create_table(
        "contact_engagement",
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("score_key", sa.Float(precision=53)),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("previews", sa.Integer(), nullable=False),
        sa.Column("last_click_us", sa.BigInteger()),
        sa.Column("last_conversion_us", sa.BigInteger()),
        sa.Column("last_event_us", sa.BigInteger()),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_engagement")),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_engagement_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_engagement_workspace_id_workspaces"),
        ),
    )
    op.create_index(
        "ix_contact_engagement_band", "contact_engagement", ["workspace_id", "score_key"]
    )
    op.create_index(
        "ix_contact_engagement_last_click", "contact_engagement", ["workspace_id", "last_click_us"]
    )
    op.create_table(
        "engagement_dirty",
        sa.Column("seq", BigId, autoincrement=True, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_engagement_dirty")),
    )


def downgrade() -> None:
    op.drop_table("engagement_dirty")
    op.drop_index("ix_contact_engagement_last_click", table_name="contact_engagement")
    op.drop_index("ix_contact_engagement_band", table_name="contact_engagement")
    op.drop_table("contact_engagement")
    op.drop_table("engagement_settings")
