"""Migration 0014 on a database holding keys (live and revoked, two workspaces): every key gets a
public id of its own, nothing else changes, the keys still authenticate as before, and the
columns 0014 adds work; down and up again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from clicktrail.services import keys
from clicktrail.storage import tables as t
from clicktrail.storage.database import alembic_config, create_engine, migrate
from clicktrail.storage.keys import KeyQueries
from factories import Repos

LIVE, REVOKED, OTHER = "ct_live-key-of-workspace-a-0000000", "ct_revoked-key-00000", "ct_b-key-000"


def test_0014_backfills_public_ids_and_keeps_every_key(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        command.upgrade(alembic_config(engine), "0013")
        old_keys = sa.table(
            "api_keys", *(sa.column(c) for c in ("id", "workspace_id", "name", "prefix",
                                                  "key_hash", "created_us", "revoked_us")),
        )  # fmt: skip
        with engine.begin() as conn:
            for wid, slug in ((1, "a"), (2, "b")):
                conn.execute(t.workspaces.insert(), {"id": wid, "public_id": f"ws_{slug}",
                                                     "slug": slug, "name": slug.upper(),
                                                     "is_demo": False, "created_us": 1})  # fmt: skip
            conn.execute(old_keys.insert(), [
                {"workspace_id": 1, "name": "live", "prefix": LIVE[:10],
                 "key_hash": keys.hash_key(LIVE), "created_us": 5, "revoked_us": None},
                {"workspace_id": 1, "name": "revoked", "prefix": REVOKED[:10],
                 "key_hash": keys.hash_key(REVOKED), "created_us": 6, "revoked_us": 7},
                {"workspace_id": 2, "name": "b", "prefix": OTHER[:10],
                 "key_hash": keys.hash_key(OTHER), "created_us": 8, "revoked_us": None},
            ])  # fmt: skip
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.api_keys).order_by(t.api_keys.c.id)).all()
        assert [(r.name, r.created_us, r.revoked_us) for r in rows] == [
            ("live", 5, None), ("revoked", 6, 7), ("b", 8, None),
        ]  # fmt: skip
        ids = [r.public_id for r in rows]
        assert all(i.startswith("key_") for i in ids) and len(set(ids)) == 3
        assert [(r.expires_us, r.last_used_us, r.scopes) for r in rows] == [(None, None, None)] * 3
        store = Repos.on(engine)
        found = keys.workspace_for_hash(store.keys, keys.hash_key(LIVE), 10)
        assert found is not None and found.slug == "a"
        assert keys.workspace_for_hash(store.keys, keys.hash_key(REVOKED), 10) is None
        # public ids are unique, and the new columns are used.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(t.api_keys.update().where(t.api_keys.c.id == 3).values(public_id=ids[0]))
        ws_a = next(w for w in store.workspaces.list_workspaces() if w.slug == "a")
        listed = keys.list_keys(KeyQueries(engine), ws_a).items
        assert [k.public_id for k in listed] == ids[:2]
        assert listed[0].last_used_us == 10
        # Down and up again.
        command.downgrade(alembic_config(engine), "0013")
        assert "public_id" not in {c["name"] for c in sa.inspect(engine).get_columns("api_keys")}
        migrate(engine)
        with engine.connect() as conn:
            again = conn.execute(sa.select(t.api_keys.c.public_id, t.api_keys.c.key_hash)).all()
        assert len({p for p, _ in again}) == 3
    finally:
        engine.dispose()
