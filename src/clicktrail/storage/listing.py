"""Paged reads for the API: each query named after the page it answers, keyset-paginated on a
unique key (see `services.listing`), always scoped to one workspace."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from clicktrail.domain.models import Domain, LinkRow
from clicktrail.services.exports import ClickEvent, MessageRecord
from clicktrail.services.listing import CampaignView, ContactList, ContactView
from clicktrail.storage import tables as t
from clicktrail.storage.campaigns import campaign_from_row, link_from_row
from clicktrail.storage.exports import (
    click_event,
    click_events_query,
    message_record,
    messages_query,
)


class ListingQueries:
    """Paged reads of a workspace's things on one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def domains_page(self, workspace_id: int, after: str | None, limit: int) -> list[Domain]:
        """Return up to `limit` of the workspace's domains with host > `after`, by host."""
        d = t.domains
        q = sa.select(d).where(d.c.workspace_id == workspace_id)
        if after is not None:
            q = q.where(d.c.host > after)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(d.c.host).limit(limit)).all()
        return [
            Domain(r.id, r.workspace_id, r.host, r.scheme, r.path_prefix, r.port, r.fallback_url)
            for r in rows
        ]

    def lists_page(self, workspace_id: int, after: str | None, limit: int) -> list[ContactList]:
        """Return up to `limit` of the workspace's lists named after `after`, with member
        counts, by name."""
        lst, mem = t.contact_lists, t.list_members
        members = (
            sa.select(sa.func.count())
            .where(mem.c.list_id == lst.c.id)
            .scalar_subquery()
            .label("members")
        )
        q = sa.select(lst.c.name, lst.c.created_us, members).where(
            lst.c.workspace_id == workspace_id
        )
        if after is not None:
            q = q.where(lst.c.name > after)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(lst.c.name).limit(limit)).all()
        return [ContactList(r.name, int(r.members), r.created_us) for r in rows]

    def contacts_page(
        self, workspace_id: int, list_name: str | None, after: str | None, limit: int
    ) -> list[ContactView]:
        """Return up to `limit` contacts with phone > `after` (of list `list_name`), by phone."""
        c = t.contacts
        q = sa.select(c).where(c.c.workspace_id == workspace_id)
        if list_name is not None:
            lst, mem = t.contact_lists, t.list_members
            q = (
                q.join(mem, mem.c.contact_id == c.c.id)
                .join(lst, lst.c.id == mem.c.list_id)
                .where(lst.c.workspace_id == workspace_id, lst.c.name == list_name)
            )
        if after is not None:
            q = q.where(c.c.phone > after)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.c.phone).limit(limit)).all()
        return [_contact_view(r) for r in rows]

    def contact(self, workspace_id: int, ref: str) -> ContactView | None:
        """Return the contact whose phone or external id is `ref` (phone first)."""
        c = t.contacts
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(c)
                .where(
                    c.c.workspace_id == workspace_id,
                    sa.or_(c.c.phone == ref, c.c.external_id == ref),
                )
                .order_by((c.c.phone == ref).desc(), c.c.id)
                .limit(1)
            ).first()
        return _contact_view(r) if r else None

    def _campaign_views(self, conn: sa.Connection, where: Any, limit: int) -> list[CampaignView]:
        cp, d, lst, lk, sg = t.campaigns, t.domains, t.contact_lists, t.links, t.segments
        rows = conn.execute(
            sa.select(cp, d.c.host, lst.c.name.label("list_name"), sg.c.slug.label("segment_slug"))
            .join(d, d.c.id == cp.c.domain_id)
            .outerjoin(lst, lst.c.id == cp.c.list_id)
            .outerjoin(sg, sg.c.id == cp.c.segment_id)
            .where(where)
            .order_by(cp.c.id.desc())
            .limit(limit)
        ).all()
        links: dict[int, list[LinkRow]] = {}
        if rows:
            for x in conn.execute(
                sa.select(lk).where(lk.c.campaign_id.in_([r.id for r in rows])).order_by(lk.c.idx)
            ):
                links.setdefault(x.campaign_id, []).append(link_from_row(x))
        return [
            CampaignView(
                campaign_from_row(r, links.get(r.id, ())),
                r.host,
                r.list_name,
                r.created_us,
                r.sent_us,
                r.segment_slug,
            )
            for r in rows
        ]

    def campaigns_page(
        self, workspace_id: int, after: str | None, limit: int
    ) -> list[CampaignView]:
        """Return up to `limit` campaigns older than campaign `after` (public id), newest first."""
        cp = t.campaigns
        where = cp.c.workspace_id == workspace_id
        if after is not None:
            before = (
                sa.select(cp.c.id)
                .where(cp.c.workspace_id == workspace_id, cp.c.public_id == after)
                .scalar_subquery()
            )
            where = sa.and_(where, cp.c.id < before)
        with self.engine.connect() as conn:
            return self._campaign_views(conn, where, limit)

    def campaign_view(self, campaign_id: int) -> CampaignView:
        """Return the campaign with this id."""
        with self.engine.connect() as conn:
            (view,) = self._campaign_views(conn, t.campaigns.c.id == campaign_id, 1)
        return view

    def messages_page(
        self,
        workspace_id: int,
        campaign_id: int | None,
        status: str | None,
        after: str | None,
        limit: int,
    ) -> list[MessageRecord]:
        """Return up to `limit` messages after message `after` (public id), oldest first."""
        m = t.messages
        q = messages_query(workspace_id, campaign_id=campaign_id, status=status)
        if after is not None:
            q = q.where(m.c.id > sa.select(m.c.id).where(m.c.public_id == after).scalar_subquery())
        with self.engine.connect() as conn:
            return [message_record(r) for r in conn.execute(q.limit(limit))]

    def message(self, workspace_id: int, public_id: str) -> MessageRecord | None:
        """Return the workspace's message with this public id."""
        q = messages_query(workspace_id).where(t.messages.c.public_id == public_id)
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return message_record(r) if r else None

    def clicks_page(
        self,
        workspace_id: int,
        campaign_id: int | None,
        since_us: int | None,
        until_us: int | None,
        verdict: str | None,
        after: str | None,
        limit: int,
    ) -> list[ClickEvent]:
        """Return up to `limit` requests after click `after` (click id), oldest first."""
        ck = t.clicks
        q = click_events_query(
            workspace_id,
            campaign_id=campaign_id,
            since_us=since_us,
            until_us=until_us,
            verdict=verdict,
        )
        if after is not None:
            q = q.where(
                ck.c.id > sa.select(ck.c.id).where(ck.c.click_id == after).scalar_subquery()
            )
        with self.engine.connect() as conn:
            return [click_event(r) for r in conn.execute(q.limit(limit))]


def _contact_view(r: Any) -> ContactView:
    return ContactView(
        r.phone, r.external_id, r.first_name, dict(r.attributes or {}),
        r.opted_out_us is not None, r.created_us, r.updated_us,
    )  # fmt: skip
