"""Campaigns and their links on SQL: create, find, list, move a campaign's status, and what
the classifier asks of a campaign (its workspace, whether its links are served over HTTPS).

Implements `services.campaigns.CampaignStore` on `campaigns` and `links`; `campaign_from_row`
and `link_from_row` are the one mapping of their rows (the listings use them too). Each public
method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.bots.rules import sends_secure_headers
from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Campaign, CampaignOptions, LinkRow
from clicktrail.storage import tables as t
from clicktrail.storage.sql import insert_ignore

_cp, _lk, _d = t.campaigns, t.links, t.domains

SLUG_TAKEN = sa.select(_cp.c.id).where(
    _cp.c.workspace_id == sa.bindparam("ws"), _cp.c.slug == sa.bindparam("slug")
)
CAMPAIGN = sa.select(_cp).where(_cp.c.id == sa.bindparam("campaign"))
CAMPAIGN_LINKS = (
    sa.select(_lk).where(_lk.c.campaign_id == sa.bindparam("campaign")).order_by(_lk.c.idx)
)
# A workspace's campaign by slug or public id.
CAMPAIGN_BY_REF = sa.select(_cp.c.id).where(
    _cp.c.workspace_id == sa.bindparam("ws"),
    sa.or_(_cp.c.slug == sa.bindparam("ref"), _cp.c.public_id == sa.bindparam("ref")),
)
WORKSPACE_CAMPAIGNS = (
    sa.select(_cp.c.id).where(_cp.c.workspace_id == sa.bindparam("ws")).order_by(_cp.c.id.desc())
)
# The scheme and host of the domain a campaign's links are served on.
CAMPAIGN_ORIGIN = (
    sa.select(_d.c.scheme, _d.c.host)
    .select_from(_cp.join(_d, _d.c.id == _cp.c.domain_id))
    .where(_cp.c.id == sa.bindparam("campaign"))
)
CAMPAIGN_WORKSPACE = sa.select(_cp.c.workspace_id).where(_cp.c.id == sa.bindparam("campaign"))


def link_from_row(x: Any) -> LinkRow:
    """Return the link of a `links` row."""
    return LinkRow(x.id, x.idx, x.url, x.role, dict((x.options or {}).get("utm") or {}))


def campaign_from_row(r: Any, links: Iterable[LinkRow]) -> Campaign:
    """Return the campaign of a `campaigns` row with its `links` (in template order)."""
    return Campaign(
        r.id, r.public_id, r.workspace_id, r.slug, r.name, r.template, r.domain_id, r.list_id,
        r.status, tuple(links), CampaignOptions.from_dict(r.options), r.segment_id,
    )  # fmt: skip


def load_campaign(conn: sa.Connection, campaign_id: int) -> Campaign:
    """Return campaign `campaign_id` with its links, inside the caller's transaction."""
    r = conn.execute(CAMPAIGN, {"campaign": campaign_id}).one()
    links = conn.execute(CAMPAIGN_LINKS, {"campaign": campaign_id}).all()
    return campaign_from_row(r, (link_from_row(x) for x in links))


class CampaignQueries:
    """Campaigns on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_campaign(
        self,
        *,
        public_id: str,
        workspace_id: int,
        slug: str,
        name: str,
        template: str,
        domain_id: int,
        list_id: int | None,
        links: Sequence[tuple[int, str, str, dict[str, str]]],
        now_us: int,
        options: CampaignOptions | None = None,
        segment_id: int | None = None,
    ) -> Campaign:
        """Store a draft campaign and its links (index, URL, role, UTM overrides); its audience
        is list `list_id`, segment `segment_id` or (neither) the whole workspace.

        Raises `Conflict` if the slug is taken.
        """
        with self.engine.begin() as conn:
            if conn.execute(SLUG_TAKEN, {"ws": workspace_id, "slug": slug}).first():
                raise Conflict(f"campaign {slug!r} already exists", field="name")
            cid = conn.execute(
                # Insert-or-ignore: another call may take the slug after the check above.
                insert_ignore(conn, _cp).returning(_cp.c.id),
                {
                    "public_id": public_id,
                    "workspace_id": workspace_id,
                    "slug": slug,
                    "name": name,
                    "template": template,
                    "domain_id": domain_id,
                    "list_id": list_id,
                    "segment_id": segment_id,
                    "status": "draft",
                    "created_us": now_us,
                    "options": (options or CampaignOptions()).as_dict(),
                },
            ).scalar()
            if cid is None:
                raise Conflict(f"campaign {slug!r} already exists", field="name")
            if links:
                conn.execute(
                    _lk.insert(),
                    [
                        {"campaign_id": cid, "idx": i, "url": u, "role": r, "options": {"utm": utm}}
                        for i, u, r, utm in links
                    ],
                )
            return load_campaign(conn, cid)

    def find_campaign(self, workspace_id: int, ref: str) -> Campaign | None:
        """Return the workspace's campaign whose slug or public id is `ref`."""
        with self.engine.connect() as conn:
            cid = conn.execute(CAMPAIGN_BY_REF, {"ws": workspace_id, "ref": ref}).scalar()
            return None if cid is None else load_campaign(conn, cid)

    def list_campaigns(self, workspace_id: int) -> list[Campaign]:
        """Return the workspace's campaigns, newest first."""
        with self.engine.connect() as conn:
            ids = list(conn.execute(WORKSPACE_CAMPAIGNS, {"ws": workspace_id}).scalars())
            return [load_campaign(conn, i) for i in ids]

    def set_campaign_status(self, campaign_id: int, status: str, now_us: int | None = None) -> None:
        """Set the campaign's status (and its sent time when given)."""
        values: dict[str, Any] = {"status": status}
        if now_us is not None:
            values["sent_us"] = now_us
        with self.engine.begin() as conn:
            conn.execute(_cp.update().where(_cp.c.id == campaign_id).values(values))

    def update_subs(self, campaign_id: int, changes: Mapping[str, str | None]) -> Campaign:
        """Set (a value) or clear (None) some of the campaign's ``subs`` in one transaction,
        the others kept; return the campaign as it is now."""
        with self.engine.begin() as conn:
            # The row written first: two changes at once are serialized (PostgreSQL's row lock,
            # SQLite's write lock), so neither is lost.
            conn.execute(_cp.update().where(_cp.c.id == campaign_id).values(id=_cp.c.id))
            stored = conn.execute(
                sa.select(_cp.c.options).where(_cp.c.id == campaign_id)
            ).scalar_one()
            options = dict(stored or {})
            subs = {**(options.get("subs") or {}), **changes}
            options["subs"] = {k: v for k, v in sorted(subs.items()) if v is not None}
            conn.execute(_cp.update().where(_cp.c.id == campaign_id).values(options=options))
            return load_campaign(conn, campaign_id)

    def campaign_is_secure(self, campaign_id: int) -> bool | None:
        """Return whether campaign `campaign_id`'s short links are on a secure origin, to
        which browsers send Fetch Metadata and client hints: HTTPS, or a loopback host
        (`sends_secure_headers`); None: no such campaign."""
        with self.engine.connect() as conn:
            row = conn.execute(CAMPAIGN_ORIGIN, {"campaign": campaign_id}).first()
        return None if row is None else sends_secure_headers(row.scheme, row.host)

    def campaign_workspace(self, campaign_id: int) -> int | None:
        """Return the id of the workspace that campaign `campaign_id` belongs to (None: no such
        campaign)."""
        with self.engine.connect() as conn:
            found = conn.execute(CAMPAIGN_WORKSPACE, {"campaign": campaign_id}).scalar_one_or_none()
        return None if found is None else int(found)
