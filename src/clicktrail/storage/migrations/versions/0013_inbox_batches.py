"""click inbox batches: one row per write of the click log, with its click count

A row of `click_inbox` now holds every spool line of one write (`n` of them, newline-separated)
instead of one: the redirect's writer then costs one row per batch, not one per click (on
PostgreSQL about a sixth of the server-side CPU, bench/RESULTS.md). Rows written before hold
one line each, which `n`'s default says. On PostgreSQL the batch is compressed with lz4 where
the server has it (pglz, the default, costs several times more CPU for the same bytes).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("click_inbox") as batch:
        batch.add_column(sa.Column("n", sa.Integer(), nullable=False, server_default="1"))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        lz4 = bind.execute(
            sa.text("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                    "AND 'lz4' = ANY(enumvals)")
        ).first()  # fmt: skip
        if lz4 is not None:
            op.execute("ALTER TABLE click_inbox ALTER COLUMN raw SET COMPRESSION lz4")


def downgrade() -> None:
    # Back to one line per row: split the batches still waiting, so no click is lost.
    bind = op.get_bind()
    inbox = sa.table("click_inbox", sa.column("seq"), sa.column("n"), sa.column("raw"))
    batches = bind.execute(sa.select(inbox.c.seq, inbox.c.raw).where(inbox.c.n > 1)).all()
    for seq, raw in batches:
        lines = [line for line in raw.split("\n") if line]
        bind.execute(inbox.insert(), [{"raw": line, "n": 1} for line in lines])
        bind.execute(inbox.delete().where(inbox.c.seq == seq))
    with op.batch_alter_table("click_inbox") as batch:
        batch.drop_column("n")
