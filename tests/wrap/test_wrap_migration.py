"""Migration 0010 on a database holding messages, tokens and receipts (SQLite rebuilds the
messages table with foreign keys off; PostgreSQL swaps the unique key): nothing is lost, every
key still holds, and a recipient may then have several messages of one campaign, one per
client_ref."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from clicktrail.storage import tables as t
from clicktrail.storage.database import alembic_config, create_engine, migrate


def _seed(conn: sa.Connection) -> None:
    conn.execute(t.workspaces.insert(), {"id": 1, "public_id": "ws_1", "slug": "a", "name": "A",
                                         "is_demo": False, "created_us": 1})  # fmt: skip
    conn.execute(t.domains.insert(), {"id": 1, "workspace_id": 1, "host": "x.example.com",
                                      "scheme": "https", "path_prefix": "/c/", "created_us": 1})  # fmt: skip
    conn.execute(t.contacts.insert(), {"id": 1, "workspace_id": 1, "phone": "+14155550100",
                                       "attributes": {}, "created_us": 1, "updated_us": 1})  # fmt: skip
    conn.execute(t.campaigns.insert(), {"id": 1, "public_id": "cmp_1", "workspace_id": 1,
                                        "slug": "c", "name": "C", "template": "https://a.example.com",
                                        "domain_id": 1, "status": "sent", "created_us": 1,
                                        "options": {}})  # fmt: skip
    conn.execute(t.links.insert(), {"id": 1, "campaign_id": 1, "idx": 0,
                                    "url": "https://a.example.com", "role": "cta", "options": {}})  # fmt: skip
    conn.execute(
        sa.insert(t.messages).values(
            public_id="msg_1", campaign_id=1, contact_id=1, to_phone="+14155550100",
            body="b", encoding="GSM-7", segments=1, status="delivered", queued_us=1,
            status_us=2, delivered_us=2,
        )
    )  # fmt: skip
    conn.execute(t.tokens.insert(), {"token": "abcdefghi", "message_id": 1, "link_id": 1,
                                     "campaign_id": 1, "contact_id": 1})  # fmt: skip
    conn.execute(t.message_events.insert(), {"message_id": 1, "status": "delivered", "at_us": 2,
                                             "source": "api", "applied": True,
                                             "recorded_us": 2})  # fmt: skip


def _message(ref: str, pid: str) -> dict[str, object]:
    return {"public_id": pid, "campaign_id": 1, "contact_id": 1, "to_phone": "+14155550100",
            "body": "b", "encoding": "GSM-7", "segments": 1, "status": "queued",
            "queued_us": 3, "status_us": 3, "client_ref": ref}  # fmt: skip


def test_0010_keeps_every_message_and_key(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        command.upgrade(alembic_config(engine), "0009")
        # Columns 0010 adds must not be written yet: insert through the columns 0009 has.
        with engine.begin() as conn:
            _seed(conn)
        migrate(engine)
        with engine.begin() as conn:
            row = conn.execute(sa.select(t.messages)).one()
            assert (row.public_id, row.client_ref, row.text_digest) == ("msg_1", "", None)
            assert conn.execute(sa.select(sa.func.count()).select_from(t.tokens)).scalar() == 1
            assert conn.execute(
                sa.select(sa.func.count()).select_from(t.message_events)
            ).scalar() == 1  # fmt: skip
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            # Another client_ref is another message for the same contact and campaign.
            conn.execute(t.messages.insert(), _message("order-1", "msg_2"))
        for ref in ("", "order-1"):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(t.messages.insert(), _message(ref, "msg_3"))
        # Foreign keys still hold on the rebuilt table.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(t.tokens.insert(), {"token": "zzzzzzzzz", "message_id": 99,
                                             "link_id": 1, "campaign_id": 1, "contact_id": 1})  # fmt: skip
        # Down again (possible once no contact has two messages in a campaign), and up.
        with engine.begin() as conn:
            conn.execute(t.messages.delete().where(t.messages.c.public_id == "msg_2"))
        command.downgrade(alembic_config(engine), "0009")
        migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.messages.c.public_id)).scalars().all() == ["msg_1"]
    finally:
        engine.dispose()
