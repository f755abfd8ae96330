"""opt-out history and wrap-only messages

Revision ID: 0010
Revises: 0009

* `opt_out_events`: every opt-out and opt-in with its time and source; `keyword_replies`:
  what a workspace answers to HELP, STOP and START.
* `messages.client_ref` and `messages.text_digest`: a wrap-only message is keyed by (campaign,
  contact, client_ref), so one recipient can get several messages of a wrap-only campaign and
  a retried wrap finds its message. The unique key (campaign_id, contact_id) becomes
  (campaign_id, contact_id, client_ref); messages of sends keep client_ref ''.

SQLite cannot drop a constraint: the messages table is rebuilt (copied), which takes a few
seconds per million messages. Foreign keys must be off while the old table is dropped (tokens
and events point at it), and SQLite ignores that switch inside a transaction, so on SQLite this
step commits what ran before it, rebuilds with foreign keys off, checks every key and commits.
It is safe to run again after an interruption: a step already done is skipped.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_KEY = "uq_messages_campaign_id_contact_id"
NEW_KEY = "uq_messages_campaign_id_contact_id_client_ref"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    if "opt_out_events" not in tables:
        op.create_table(
            "opt_out_events",
            sa.Column("id", BigId, autoincrement=True, nullable=False),
            sa.Column("workspace_id", BigId, nullable=False),
            sa.Column("contact_id", BigId, nullable=False),
            sa.Column("opted_out", sa.Boolean(), nullable=False),
            sa.Column("at_us", sa.BigInteger(), nullable=False),
            sa.Column("source", sa.String(100), nullable=False),
            sa.Column("keyword", sa.String(16)),
            sa.Column("to_number", sa.String(32)),
            sa.Column("note", sa.String(500)),
            sa.Column("applied", sa.Boolean(), nullable=False),
            sa.Column("recorded_us", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_out_events")),
            sa.ForeignKeyConstraint(
                ["workspace_id"],
                ["workspaces.id"],
                name=op.f("fk_opt_out_events_workspace_id_workspaces"),
            ),
            sa.ForeignKeyConstraint(
                ["contact_id"], ["contacts.id"], name=op.f("fk_opt_out_events_contact_id_contacts")
            ),
        )
        op.create_index(
            op.f("ix_opt_out_events_contact_id_at_us"), "opt_out_events", ["contact_id", "at_us"]
        )
        op.create_index(
            op.f("ix_opt_out_events_workspace_id_id"), "opt_out_events", ["workspace_id", "id"]
        )
    if "keyword_replies" not in tables:
        op.create_table(
            "keyword_replies",
            sa.Column("workspace_id", BigId, nullable=False),
            sa.Column("help", sa.Text()),
            sa.Column("opt_out", sa.Text()),
            sa.Column("opt_in", sa.Text()),
            sa.Column("updated_us", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_keyword_replies")),
            sa.ForeignKeyConstraint(
                ["workspace_id"],
                ["workspaces.id"],
                name=op.f("fk_keyword_replies_workspace_id_workspaces"),
            ),
        )
    if "client_ref" in {c["name"] for c in inspector.get_columns("messages")}:
        return
    if bind.dialect.name == "sqlite":
        _rebuild_messages_sqlite(bind)
        return
    op.add_column(
        "messages",
        sa.Column("client_ref", sa.String(200), nullable=False, server_default=""),
    )
    op.add_column("messages", sa.Column("text_digest", sa.String(32)))
    op.drop_constraint(OLD_KEY, "messages", type_="unique")
    op.create_unique_constraint(NEW_KEY, "messages", ["campaign_id", "contact_id", "client_ref"])


def _rebuild_messages_sqlite(bind: Any) -> None:
    raw: Any = bind.connection.driver_connection
    # PRAGMA foreign_keys is a no-op inside a transaction: end the one alembic opened (its
    # work so far is complete steps), switch keys off, rebuild, check, commit, switch back.
    if raw.in_transaction:
        raw.commit()
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with op.batch_alter_table("messages", recreate="always") as batch:
            batch.add_column(
                sa.Column("client_ref", sa.String(200), nullable=False, server_default="")
            )
            batch.add_column(sa.Column("text_digest", sa.String(32)))
            batch.drop_constraint(OLD_KEY, type_="unique")
            batch.create_unique_constraint(NEW_KEY, ["campaign_id", "contact_id", "client_ref"])
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raw.rollback()
            raise RuntimeError(f"messages rebuild would break foreign keys: {broken[:5]}")
        raw.commit()
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def downgrade() -> None:
    # Fails when a campaign holds several messages for one contact (wrap-only campaigns with
    # client_ref): the old key cannot hold them.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        raw: Any = bind.connection.driver_connection
        if raw.in_transaction:
            raw.commit()
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with op.batch_alter_table("messages", recreate="always") as batch:
                batch.drop_constraint(NEW_KEY, type_="unique")
                batch.create_unique_constraint(OLD_KEY, ["campaign_id", "contact_id"])
                batch.drop_column("text_digest")
                batch.drop_column("client_ref")
            raw.commit()
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
    else:
        op.drop_constraint(NEW_KEY, "messages", type_="unique")
        op.create_unique_constraint(OLD_KEY, "messages", ["campaign_id", "contact_id"])
        op.drop_column("messages", "text_digest")
        op.drop_column("messages", "client_ref")
    op.drop_table("keyword_replies")
    op.drop_index(op.f("ix_opt_out_events_workspace_id_id"), table_name="opt_out_events")
    op.drop_index(op.f("ix_opt_out_events_contact_id_at_us"), table_name="opt_out_events")
    op.drop_table("opt_out_events")
