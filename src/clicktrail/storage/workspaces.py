"""Workspaces and their short domains on SQL: create, find, list, and whether a host is one of
ours (TLS on demand).

Implements `services.workspaces.WorkspaceStore` on `workspaces` and `domains`;
`workspace_from_row` and `domain_from_row` are the one mapping of their rows. Each public
method is one transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Domain, Workspace
from clicktrail.storage import tables as t

_w, _d = t.workspaces, t.domains

WORKSPACE_SLUG_TAKEN = sa.select(_w.c.id).where(_w.c.slug == sa.bindparam("slug"))
WORKSPACES = sa.select(_w).order_by(_w.c.id)
# A workspace by slug or public id.
WORKSPACE_BY_REF = sa.select(_w).where(
    sa.or_(_w.c.slug == sa.bindparam("ref"), _w.c.public_id == sa.bindparam("ref"))
)
HOST_TAKEN = sa.select(_d.c.id).where(_d.c.host == sa.bindparam("host"))
WORKSPACE_DOMAINS = sa.select(_d).where(_d.c.workspace_id == sa.bindparam("ws")).order_by(_d.c.id)
DOMAIN = sa.select(_d).where(_d.c.id == sa.bindparam("domain"))


def workspace_from_row(r: Any) -> Workspace:
    """Return the workspace of a `workspaces` row."""
    return Workspace(r.id, r.public_id, r.slug, r.name, r.is_demo)


def domain_from_row(r: Any) -> Domain:
    """Return the short domain of a `domains` row."""
    return Domain(r.id, r.workspace_id, r.host, r.scheme, r.path_prefix, r.port, r.fallback_url)


class WorkspaceQueries:
    """Workspaces and domains on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_workspace(
        self, public_id: str, slug: str, name: str, is_demo: bool, now_us: int
    ) -> Workspace:
        """Store a new workspace. Raises `Conflict` if the slug is taken."""
        with self.engine.begin() as conn:
            if conn.execute(WORKSPACE_SLUG_TAKEN, {"slug": slug}).first():
                raise Conflict(f"workspace {slug!r} already exists", field="slug")
            wid = conn.execute(
                _w.insert().returning(_w.c.id),
                {
                    "public_id": public_id,
                    "slug": slug,
                    "name": name,
                    "is_demo": is_demo,
                    "created_us": now_us,
                },
            ).scalar_one()
        return Workspace(wid, public_id, slug, name, is_demo)

    def list_workspaces(self) -> list[Workspace]:
        """Return every workspace, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(WORKSPACES).all()
        return [workspace_from_row(r) for r in rows]

    def find_workspace(self, ref: str) -> Workspace | None:
        """Return the workspace whose slug or public id is `ref`."""
        with self.engine.connect() as conn:
            r = conn.execute(WORKSPACE_BY_REF, {"ref": ref}).first()
        return workspace_from_row(r) if r else None

    def add_domain(self, domain: Domain, now_us: int) -> Domain:
        """Store a short domain. Raises `Conflict` if another domain has this host."""
        with self.engine.begin() as conn:
            if conn.execute(HOST_TAKEN, {"host": domain.host}).first():
                raise Conflict(f"domain {domain.host!r} is already registered", field="host")
            did = conn.execute(
                _d.insert().returning(_d.c.id),
                {
                    "workspace_id": domain.workspace_id,
                    "host": domain.host,
                    "scheme": domain.scheme,
                    "port": domain.port,
                    "path_prefix": domain.path_prefix,
                    "fallback_url": domain.fallback_url,
                    "created_us": now_us,
                },
            ).scalar_one()
        return Domain(
            did,
            domain.workspace_id,
            domain.host,
            domain.scheme,
            domain.path_prefix,
            domain.port,
            domain.fallback_url,
        )

    def list_domains(self, workspace_id: int) -> list[Domain]:
        """Return the workspace's domains, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(WORKSPACE_DOMAINS, {"ws": workspace_id}).all()
        return [domain_from_row(r) for r in rows]

    def get_domain(self, domain_id: int) -> Domain:
        """Return the domain with this id."""
        with self.engine.connect() as conn:
            r = conn.execute(DOMAIN, {"domain": domain_id}).one()
        return domain_from_row(r)

    def is_registered_host(self, host: str) -> bool:
        """Return whether `host` (lowercased, IDNA-encoded, no port) is a registered domain."""
        with self.engine.connect() as conn:
            return conn.execute(HOST_TAKEN, {"host": host}).first() is not None
