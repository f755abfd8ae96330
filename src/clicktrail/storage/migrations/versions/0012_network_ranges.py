"""network ranges: a workspace's own CIDR lists for bot filtering

* `network_ranges`: each range of a workspace's named lists, normalized, with its kind
  (hosting, cdn, crawler, scanner, mobile, relay, residential, vpn, tor) and owner.
* `network_list_revisions`: a counter per workspace that goes up with every change to its
  lists, so the classifier knows when to reload them without reading the ranges.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "network_ranges",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_ranges")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_network_ranges_workspace_id_workspaces"),
        ),
        sa.UniqueConstraint(
            "workspace_id",
            "list_name",
            "cidr",
            name=op.f("uq_network_ranges_workspace_id_list_name_cidr"),
        ),
    )
    op.create_table(
        "network_list_revisions",
        sa.Column("workspace_id", _BigId, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_network_list_revisions")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_network_list_revisions_workspace_id_workspaces"),
        ),
    )


def downgrade() -> None:
    op.drop_table("network_list_revisions")
    op.drop_table("network_ranges")
