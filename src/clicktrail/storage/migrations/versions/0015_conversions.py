"""conversions: conversions in, duplicate modes, the rejected log, postback secrets

* `conversions`: one row per counted conversion, unique per workspace on its `dedup_key`
  forever (docs/conversions.md), with the click, contact, message, campaign and link it
  resolved to; values in micros of an ISO 4217 currency.
* `conversion_events`: a workspace's duplicate mode per event (ignore, count, replace).
* `rejected_conversions`: refused postbacks, pixels and beacons, bounded per workspace.
* `conversion_keys`: postback secrets and publishable (browser) keys, hashed.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces")
    )


def upgrade() -> None:
    op.create_table(
        "conversions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("value_micros", sa.BigInteger()),
        sa.Column("currency", sa.String(3)),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("click_id", sa.String(32)),
        sa.Column("contact_id", _BigId),
        sa.Column("message_id", _BigId),
        sa.Column("campaign_id", _BigId),
        sa.Column("link_id", _BigId),
        sa.Column("txn", sa.String(128)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("meta", sa.JSON()),
        sa.Column("updated_us", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        _workspace_fk("conversions"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_conversions_contact_id_contacts")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_conversions_public_id")),
        sa.UniqueConstraint(
            "workspace_id", "dedup_key", name=op.f("uq_conversions_workspace_id_dedup_key")
        ),
    )
    op.create_index(op.f("ix_conversions_workspace_id_id"), "conversions", ["workspace_id", "id"])
    op.create_index(
        op.f("ix_conversions_campaign_id_occurred_us"),
        "conversions",
        ["campaign_id", "occurred_us"],
    )
    op.create_index(
        op.f("ix_conversions_contact_id_occurred_us"), "conversions", ["contact_id", "occurred_us"]
    )
    op.create_index(op.f("ix_conversions_click_id"), "conversions", ["click_id"])
    op.create_table(
        "conversion_events",
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("duplicate_mode", sa.String(16), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "event", name=op.f("pk_conversion_events")),
        _workspace_fk("conversion_events"),
    )
    op.create_table(
        "rejected_conversions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", _BigId),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("query", sa.String(2048), nullable=False),
        sa.Column("ip", sa.String(45)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_conversions")),
        _workspace_fk("rejected_conversions"),
    )
    op.create_index(
        op.f("ix_rejected_conversions_workspace_id_id"),
        "rejected_conversions",
        ["workspace_id", "id"],
    )
    op.create_table(
        "conversion_keys",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lookup", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("default_currency", sa.String(3)),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversion_keys")),
        _workspace_fk("conversion_keys"),
        sa.UniqueConstraint("public_id", name=op.f("uq_conversion_keys_public_id")),
        sa.UniqueConstraint("lookup", name=op.f("uq_conversion_keys_lookup")),
    )
    op.create_index(op.f("ix_conversion_keys_workspace_id"), "conversion_keys", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("conversion_keys")
    op.drop_table("rejected_conversions")
    op.drop_table("conversion_events")
    op.drop_table("conversions")
