"""attribution in the database: covering indexes of the touches of converting contacts

Re-attribution on PostgreSQL picks the winning touches in one statement per batch
(`storage.recredit.RECREDIT`): a converting contact's messages, then each message's requests
up to the conversion. These indexes hold every column it reads, so both are index-only scans
instead of a heap fetch per message and per request (the heap rows carry bodies, headers and
user agents):

* `ix_messages_attribution` (contact_id) INCLUDE (id, campaign_id, delivered_us, is_test)
  replaces `ix_messages_contact_id` (migration 0017; same key, so no extra index to keep);
* `ix_clicks_attribution` (message_id, at_us) INCLUDE (id, link_id, is_click, verdict, final).

On SQLite (no INCLUDE) they are plain indexes on their keys.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_attribution", "messages", ["contact_id"],
        postgresql_include=["id", "campaign_id", "delivered_us", "is_test"],
    )  # fmt: skip
    op.drop_index("ix_messages_contact_id", table_name="messages")
    op.create_index(
        "ix_clicks_attribution", "clicks", ["message_id", "at_us"],
        postgresql_include=["id", "link_id", "is_click", "verdict", "final"],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_clicks_attribution", table_name="clicks")
    op.create_index("ix_messages_contact_id", "messages", ["contact_id"])
    op.drop_index("ix_messages_attribution", table_name="messages")
