"""segments: saved filters and static lists; contacts' countries; campaigns to a segment

* `segments` (a workspace's saved filters and static lists, built-ins included once named) and
  `segment_members` (the members of static ones).
* `contacts.country`: the phone's ISO 3166 region ("ZZ" unknown), filled here for every stored
  contact, then by imports; `ix_contacts_segments` (workspace, opt-out time, country) lets a
  segment's size count opted-in contacts and countries from the index.
* `campaigns.segment_id`: a campaign's audience as a segment instead of a list.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 5000


def _country(phone: str, cache: dict[str, str]) -> str:
    # As storage.rollup.country_of: the region of the first 8 characters' calling code.
    key = phone[:8]
    found = cache.get(key)
    if found is None:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
        except phonenumbers.NumberParseException:
            region = None
        found = cache[key] = str(region) if region and region != "001" else "ZZ"
    return found


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", BigId, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filter", sa.JSON()),
        sa.Column("builtin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_segments_workspace_id_workspaces")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_segments_public_id")),
        sa.UniqueConstraint("workspace_id", "slug", name=op.f("uq_segments_workspace_id_slug")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("added_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "contact_id", name=op.f("pk_segment_members")),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_members_segment_id_segments")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_segment_members_contact_id_contacts")
        ),
    )
    op.create_index("ix_segment_members_contact", "segment_members", ["contact_id"])
    op.add_column("contacts", sa.Column("country", sa.String(2)))
    op.add_column("campaigns", sa.Column("segment_id", BigId))
    conn = op.get_bind()
    contacts = sa.table(
        "contacts", sa.column("id", sa.BigInteger()), sa.column("phone", sa.String()),
        sa.column("country", sa.String()),
    )  # fmt: skip
    cache: dict[str, str] = {}
    after = 0
    while True:
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.phone)
            .where(contacts.c.id > after)
            .order_by(contacts.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            contacts.update()
            .where(contacts.c.id == sa.bindparam("b_id"))
            .values(country=sa.bindparam("b_country")),
            [{"b_id": i, "b_country": _country(p, cache)} for i, p in rows],
        )
        after = rows[-1][0]
    op.create_index("ix_contacts_segments", "contacts", ["workspace_id", "opted_out_us", "country"])


def downgrade() -> None:
    op.drop_index("ix_contacts_segments", table_name="contacts")
    op.drop_column("campaigns", "segment_id")
    op.drop_column("contacts", "country")
    op.drop_index("ix_segment_members_contact", table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_table("segments")
