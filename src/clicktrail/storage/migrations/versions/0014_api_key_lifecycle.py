"""api keys: public ids, expiry, last use and room for scopes

* `public_id` (``key_…``) names a key in lists, the API and the CLI without its secret; keys
  created before get one here.
* `expires_us`: an optional expiry, after which the key answers 401 like a revoked one.
* `last_used_us`: when the key was last used, written at most once a minute per key.
* `scopes`: NULL means full access, which every key has; scopes are not enforced yet.

SQLite rebuilds the table (nothing references it) to make `public_id` NOT NULL and unique.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clicktrail.domain.ids import new_public_id

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("public_id", sa.String(32)))
        batch.add_column(sa.Column("expires_us", sa.BigInteger()))
        batch.add_column(sa.Column("last_used_us", sa.BigInteger()))
        batch.add_column(sa.Column("scopes", sa.Text()))
    bind = op.get_bind()
    keys = sa.table("api_keys", sa.column("id"), sa.column("public_id"))
    ids = bind.execute(sa.select(keys.c.id).where(keys.c.public_id.is_(None))).scalars().all()
    for key_id in ids:
        bind.execute(
            keys.update().where(keys.c.id == key_id).values(public_id=new_public_id("key", 12))
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("public_id", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint(op.f("uq_api_keys_public_id"), ["public_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("uq_api_keys_public_id"), type_="unique")
        batch.drop_column("scopes")
        batch.drop_column("last_used_us")
        batch.drop_column("expires_us")
        batch.drop_column("public_id")
