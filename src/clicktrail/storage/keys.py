"""API keys on SQL: authenticating a key, and a workspace's keys (list, create, revoke, rotate).

Implements `services.keys.KeyStore` (`KeyQueries`) and the two queries authentication runs
through the store (`key_for_hash`, `record_use`) on the `api_keys` table (migrations 0001 and
0014). Every query of a workspace's keys is scoped to it. Each public method is one
transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Workspace
from clicktrail.services.keys import ApiKey, NewKey
from clicktrail.storage import tables as t

_k, _w = t.api_keys, t.workspaces
_KEY_COLUMNS = (
    _k.c.id, _k.c.public_id, _k.c.workspace_id, _k.c.name, _k.c.prefix, _k.c.scopes,
    _k.c.created_us, _k.c.expires_us, _k.c.last_used_us, _k.c.revoked_us,
)  # fmt: skip

# The key with a hash and its workspace, revoked and expired ones too (the service decides):
# one probe of the unique index on key_hash, once per authenticated request.
KEY_FOR_HASH = (
    sa.select(*_KEY_COLUMNS, _w.c.public_id.label("ws_public_id"), _w.c.slug,
              _w.c.name.label("ws_name"), _w.c.is_demo)
    .join(_w, _w.c.id == _k.c.workspace_id)
    .where(_k.c.key_hash == sa.bindparam("key_hash"))
)  # fmt: skip
# Last use, at most once a minute per key: only when unset or older than `stale_us`, so a
# writer that read an older value never moves it back, and racing writers write once.
RECORD_USE = (
    _k.update()
    .where(
        _k.c.id == sa.bindparam("key_id"),
        sa.or_(_k.c.last_used_us.is_(None), _k.c.last_used_us <= sa.bindparam("stale_us")),
    )
    .values(last_used_us=sa.bindparam("now_us"))
)
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
# A workspace's keys, in creation order.
WORKSPACE_KEYS = (
    sa.select(*_KEY_COLUMNS).where(_k.c.workspace_id == sa.bindparam("ws")).order_by(_k.c.id)
)
# The row after which a page starts (the cursor names a public id, never an integer key).
KEY_ROW = sa.select(_k.c.id).where(
    _k.c.workspace_id == sa.bindparam("ws"), _k.c.public_id == sa.bindparam("after")
)
# Locks every key of a workspace (PostgreSQL), so two revocations cannot each leave the other
# key as the last one active and both go through.
LOCK_WORKSPACE_KEYS = (
    sa.select(_k.c.id).where(_k.c.workspace_id == sa.bindparam("ws")).with_for_update()
)
REVOKE = (
    _k.update()
    .where(_k.c.workspace_id == sa.bindparam("ws"), _k.c.public_id == sa.bindparam("key"),
           _k.c.revoked_us.is_(None))
    .values(revoked_us=sa.bindparam("now_us"))
)  # fmt: skip
# Active keys of a workspace: not revoked, not expired.
ACTIVE_KEYS = sa.select(sa.func.count()).where(
    _k.c.workspace_id == sa.bindparam("ws"), _k.c.revoked_us.is_(None),
    sa.or_(_k.c.expires_us.is_(None), _k.c.expires_us > sa.bindparam("now_us")),
)  # fmt: skip
# Rotation with a grace period: the old key expires at the end of it, or sooner as it was.
EXPIRE = (
    _k.update()
    .where(_k.c.workspace_id == sa.bindparam("ws"), _k.c.public_id == sa.bindparam("key"),
           _k.c.revoked_us.is_(None),
           sa.or_(_k.c.expires_us.is_(None), _k.c.expires_us > sa.bindparam("retire_us")))
    .values(expires_us=sa.bindparam("retire_us"))
)  # fmt: skip


def _key(r: Any) -> ApiKey:
    return ApiKey(
        r.id, r.public_id, r.workspace_id, r.name, r.prefix, r.scopes, r.created_us,
        r.expires_us, r.last_used_us, r.revoked_us,
    )  # fmt: skip


def key_for_hash(engine: sa.Engine, key_hash: str) -> tuple[Workspace, ApiKey] | None:
    """Return the key with this hash and its workspace (None: no such key)."""
    with engine.connect() as conn:
        r = conn.execute(KEY_FOR_HASH, {"key_hash": key_hash}).first()
    if r is None:
        return None
    return Workspace(r.workspace_id, r.ws_public_id, r.slug, r.ws_name, r.is_demo), _key(r)


def record_use(engine: sa.Engine, key_id: int, now_us: int, stale_us: int) -> None:
    """Set the key's last use to `now_us` when unset or not after `stale_us`."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Inside a request: do not wait for the WAL flush (about 10 ms here). A crash may
            # lose this write, which only makes "last used" a minute older.
            conn.exec_driver_sql(ASYNC_COMMIT)
        conn.execute(RECORD_USE, {"key_id": key_id, "now_us": now_us, "stale_us": stale_us})


class KeyQueries:
    """A workspace's API keys on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def api_key_for_hash(self, key_hash: str) -> tuple[Workspace, ApiKey] | None:
        """Return the key with this hash and its workspace (None: no such key)."""
        return key_for_hash(self.engine, key_hash)

    def record_key_use(self, key_id: int, now_us: int, stale_us: int) -> None:
        """Set the key's last use to `now_us` when unset or not after `stale_us`."""
        record_use(self.engine, key_id, now_us, stale_us)

    def add_key(self, key: NewKey) -> ApiKey:
        """Store `key` and return its record."""
        with self.engine.begin() as conn:
            return self._insert(conn, key)

    @staticmethod
    def _insert(conn: sa.Connection, key: NewKey) -> ApiKey:
        kid = conn.execute(
            _k.insert().returning(_k.c.id),
            {"public_id": key.public_id, "workspace_id": key.workspace_id, "name": key.name,
             "prefix": key.prefix, "key_hash": key.key_hash, "scopes": key.scopes,
             "created_us": key.created_us, "expires_us": key.expires_us},
        ).scalar_one()  # fmt: skip
        return ApiKey(
            kid, key.public_id, key.workspace_id, key.name, key.prefix, key.scopes,
            key.created_us, key.expires_us, None, None,
        )  # fmt: skip

    def keys_page(self, workspace_id: int, after: str | None, limit: int | None) -> list[ApiKey]:
        """Return the workspace's keys in creation order after the key `after` (a public id;
        one the workspace does not have starts nowhere), up to `limit` (None: all)."""
        query = WORKSPACE_KEYS.limit(limit)
        if after is not None:
            query = query.where(_k.c.id > KEY_ROW.scalar_subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"ws": workspace_id, "after": after}).all()
        return [_key(r) for r in rows]

    def find_key(
        self, workspace_id: int, public_id: str | None = None, key_hash: str | None = None
    ) -> ApiKey | None:
        """Return the workspace's key with this public id (or with this hash)."""
        where = _k.c.public_id == public_id if key_hash is None else _k.c.key_hash == key_hash
        with self.engine.connect() as conn:
            return self._find(conn, workspace_id, where)

    @staticmethod
    def _find(conn: sa.Connection, workspace_id: int, where: Any) -> ApiKey | None:
        r = conn.execute(WORKSPACE_KEYS.where(where), {"ws": workspace_id}).first()
        return _key(r) if r is not None else None

    def revoke_key(
        self, workspace_id: int, public_id: str, now_us: int, keep_one_active: bool
    ) -> ApiKey | None:
        """Revoke the key now (a revoked key stays as it was) and return it; None when the
        workspace has no such key. With `keep_one_active`, raises `Conflict` (and writes
        nothing) rather than revoke the workspace's last active key."""
        params = {"ws": workspace_id, "key": public_id, "now_us": now_us}
        with self.engine.begin() as conn:
            # On SQLite the UPDATE comes first and takes the database's write lock, so the
            # count below sees every other revocation; PostgreSQL locks the workspace's keys.
            if conn.dialect.name == "postgresql":
                conn.execute(LOCK_WORKSPACE_KEYS, params)
            revoked = conn.execute(REVOKE, params).rowcount
            if revoked and keep_one_active and not conn.execute(ACTIVE_KEYS, params).scalar():
                raise Conflict(
                    f"API key {public_id} is the workspace's last active key: revoking it would "
                    "lock the workspace out of the API. Create another key first, or revoke "
                    "with force=true",
                    field="key",
                )
            return self._find(conn, workspace_id, _k.c.public_id == public_id)

    def rotate_key(
        self, workspace_id: int, public_id: str, new: NewKey, retire_us: int, now_us: int
    ) -> tuple[ApiKey, ApiKey] | None:
        """Store `new` and retire the old key: revoked now when `retire_us` is `now_us`, else
        expiring at `retire_us` (unless it expires sooner). Returns (new, old as it is now);
        None when the workspace has no such key. Raises `Conflict` for a revoked key."""
        params = {"ws": workspace_id, "key": public_id, "now_us": now_us, "retire_us": retire_us}
        with self.engine.begin() as conn:
            done = conn.execute(REVOKE if retire_us <= now_us else EXPIRE, params).rowcount
            old = self._find(conn, workspace_id, _k.c.public_id == public_id)
            if old is None:
                return None
            if not done and old.revoked_us is not None:
                raise Conflict(
                    f"API key {public_id} is revoked; create a new key instead", field="key"
                )
            return self._insert(conn, new), old
