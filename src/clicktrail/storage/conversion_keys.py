"""Postback secrets and publishable keys on SQL (`conversion_keys`).

Implements `services.conversion_keys.ConversionKeyStore`. A credential is found by its lookup
part (one probe of a unique index) with its workspace; the service compares the hash. Each
public method is one transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Workspace
from clicktrail.services.conversion_keys import ConversionKey, NewConversionKey
from clicktrail.storage import tables as t

_k, _w = t.conversion_keys, t.workspaces
_COLUMNS = (
    _k.c.id, _k.c.public_id, _k.c.workspace_id, _k.c.kind, _k.c.name, _k.c.lookup,
    _k.c.default_currency, _k.c.created_us, _k.c.revoked_us,
)  # fmt: skip
_OF_KIND = (_k.c.workspace_id == sa.bindparam("ws")) & (_k.c.kind == sa.bindparam("k_kind"))

# An active credential of a kind by its lookup part, with its workspace and stored hash.
KEY_FOR_LOOKUP = (
    sa.select(*_COLUMNS, _k.c.key_hash, _w.c.public_id.label("ws_public_id"), _w.c.slug,
              _w.c.name.label("ws_name"), _w.c.is_demo)
    .join(_w, _w.c.id == _k.c.workspace_id)
    .where(_k.c.lookup == sa.bindparam("lookup"), _k.c.kind == sa.bindparam("k_kind"),
           _k.c.revoked_us.is_(None))
)  # fmt: skip
KEYS = sa.select(*_COLUMNS).where(_OF_KIND).order_by(_k.c.id)
ACTIVE = sa.select(sa.func.count()).where(_OF_KIND, _k.c.revoked_us.is_(None))
KEY_BY_ID = sa.select(*_COLUMNS).where(_OF_KIND, _k.c.public_id == sa.bindparam("k_id"))
REVOKE = (
    _k.update()
    .where(_OF_KIND, _k.c.public_id == sa.bindparam("k_id"), _k.c.revoked_us.is_(None))
    .values(revoked_us=sa.bindparam("now"))
)
# Serializes creations per workspace on PostgreSQL (the active count then holds); SQLite
# transactions that write are serialized already.
LOCK_WORKSPACE = sa.select(_w.c.id).where(_w.c.id == sa.bindparam("ws")).with_for_update()


def _key(r: Any) -> ConversionKey:
    prefix = {"postback": "pbs_", "publishable": "pk_"}.get(r.kind, "") + r.lookup
    return ConversionKey(
        r.id, r.public_id, r.workspace_id, r.kind, r.name, prefix, r.default_currency,
        r.created_us, r.revoked_us,
    )  # fmt: skip


class ConversionKeyQueries:
    """Postback secrets and publishable keys on one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add_conversion_key(self, key: NewConversionKey, max_active: int) -> ConversionKey:
        """Store a credential. Raises `Conflict` when the workspace already has `max_active`
        active ones of its kind (nothing is written)."""
        where = {"ws": key.workspace_id, "k_kind": key.kind}
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(LOCK_WORKSPACE, where)
            if conn.execute(ACTIVE, where).scalar_one() >= max_active:
                raise Conflict(
                    f"this workspace has {max_active} active {key.kind} credentials: revoke one "
                    "first",
                    field="name",
                )
            conn.execute(
                _k.insert(),
                {"public_id": key.public_id, "workspace_id": key.workspace_id, "kind": key.kind,
                 "name": key.name, "lookup": key.lookup, "key_hash": key.key_hash,
                 "default_currency": key.default_currency, "created_us": key.created_us},
            )  # fmt: skip
            return _key(conn.execute(KEY_BY_ID, {**where, "k_id": key.public_id}).one())

    def conversion_key_for_lookup(
        self, kind: str, lookup: str
    ) -> tuple[Workspace, ConversionKey, str] | None:
        """Return the active credential of `kind` with this lookup part, its workspace and its
        stored hash (None: none)."""
        with self.engine.connect() as conn:
            r = conn.execute(KEY_FOR_LOOKUP, {"k_kind": kind, "lookup": lookup}).first()
        if r is None:
            return None
        ws = Workspace(r.workspace_id, r.ws_public_id, r.slug, r.ws_name, r.is_demo)
        return ws, _key(r), str(r.key_hash)

    def conversion_keys(self, workspace_id: int, kind: str) -> list[ConversionKey]:
        """Return the workspace's credentials of `kind`, oldest first, revoked ones too."""
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(KEYS, {"ws": workspace_id, "k_kind": kind})]

    def revoke_conversion_key(
        self, workspace_id: int, kind: str, public_id: str, now_us: int
    ) -> ConversionKey | None:
        """Revoke a credential (an already revoked one stays as it was); return it (None: not
        one of the workspace's)."""
        where = {"ws": workspace_id, "k_kind": kind, "k_id": public_id}
        with self.engine.begin() as conn:
            conn.execute(REVOKE, {**where, "now": now_us})
            r = conn.execute(KEY_BY_ID, where).first()
        return None if r is None else _key(r)
