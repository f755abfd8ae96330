"""contacts: the phone rules a number was found valid under

`phone_valid_under` records the phone rules (phonenumbers' metadata version) under which a
contact's number was last found valid: an import or a wrap call writes the rules in force, a
send trusts them while they are the same and checks the number again (then records it) once
they change. Contacts stored before have NULL: their next send checks them.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("phone_valid_under", sa.String(40)))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN on both (SQLite since 3.35, which the claims' RETURNING needs
    # too): no rebuild of a table that others reference.
    op.drop_column("contacts", "phone_valid_under")
