"""Wrap-only messages on SQL: the lookups a wrap call needs and its one write transaction.

Implements `services.wrapping.WrapStore`. A wrap call reads (contacts by phone or external id,
messages by their (contact, client_ref) key), wraps in memory, then writes everything in one
transaction: new contacts, new links, messages (COPY on PostgreSQL) and tokens. A unique clash
(a token, or a key a concurrent call took) rolls it all back as `Conflict` for the service to
retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.domain.models import Contact, ContactInput
from clicktrail.domain.status import Status
from clicktrail.services.wrapping import WRAPPABLE, PendingMessage, StoredWrap
from clicktrail.storage import tables as t
from clicktrail.storage.contacts import contact_from_row
from clicktrail.storage.sql import chunks, driver_insert, is_postgres


class WrapQueries:
    """Wrap-only messages on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._driver_integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError

    def contacts_by_phone(self, workspace_id: int, phones: Sequence[str]) -> dict[str, Contact]:
        """Return the workspace's contacts with these phones, by phone."""
        c = t.contacts
        out: dict[str, Contact] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(phones):
                for r in conn.execute(
                    sa.select(c).where(c.c.workspace_id == workspace_id, c.c.phone.in_(chunk))
                ):
                    out[r.phone] = contact_from_row(r)
        return out

    def contacts_by_external_id(
        self, workspace_id: int, external_ids: Sequence[str]
    ) -> dict[str, list[Contact]]:
        """Return the workspace's contacts with these external ids, by external id."""
        c = t.contacts
        out: dict[str, list[Contact]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(external_ids):
                for r in conn.execute(
                    sa.select(c)
                    .where(c.c.workspace_id == workspace_id, c.c.external_id.in_(chunk))
                    .order_by(c.c.id)
                ):
                    out.setdefault(r.external_id, []).append(contact_from_row(r))
        return out

    def wrapped_messages(
        self, campaign_id: int, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], StoredWrap]:
        """Return the campaign's messages with these (contact id, client_ref) keys, with their
        tokens in link order."""
        m, tk, lk = t.messages, t.tokens, t.links
        tokens: dict[int, list[tuple[str, int, str]]] = {}
        with self.engine.connect() as conn:
            if is_postgres(self.engine):
                # A row-value IN list of thousands of pairs is planned as a scan of the
                # campaign's messages; a join on unnest() probes the unique key per pair.
                rows: Iterable[Any] = conn.execute(
                    sa.text(
                        "SELECT m.id, m.public_id, m.contact_id, m.client_ref, m.text_digest, "
                        "m.body, m.encoding, m.segments, m.status FROM messages AS m "
                        "JOIN unnest(CAST(:cids AS bigint[]), CAST(:refs AS text[])) "
                        "AS k(cid, ref) ON m.contact_id = k.cid AND m.client_ref = k.ref "
                        "WHERE m.campaign_id = :campaign"
                    ),
                    {"cids": [k[0] for k in keys], "refs": [k[1] for k in keys],
                     "campaign": campaign_id},
                ).all()  # fmt: skip
            else:
                rows = [
                    r
                    for chunk in chunks(keys)
                    for r in conn.execute(
                        sa.select(
                            m.c.id,
                            m.c.public_id,
                            m.c.contact_id,
                            m.c.client_ref,
                            m.c.text_digest,
                            m.c.body,
                            m.c.encoding,
                            m.c.segments,
                            m.c.status,
                        ).where(
                            m.c.campaign_id == campaign_id,
                            sa.tuple_(m.c.contact_id, m.c.client_ref).in_(list(chunk)),
                        )
                    )
                ]
            found = {r.id: r for r in rows}
            for chunk in chunks(sorted(found)):
                for mid, token, idx, dest in conn.execute(
                    sa.select(
                        tk.c.message_id, tk.c.token, lk.c.idx,
                        sa.func.coalesce(tk.c.destination, lk.c.url),
                    )
                    .join(lk, lk.c.id == tk.c.link_id)
                    .where(tk.c.message_id.in_(chunk))
                    .order_by(tk.c.message_id, lk.c.idx)
                ):  # fmt: skip
                    tokens.setdefault(mid, []).append((token, idx, dest))
        return {
            (r.contact_id, r.client_ref): StoredWrap(
                r.public_id,
                r.contact_id,
                r.client_ref,
                r.text_digest,
                r.body,
                r.encoding,
                r.segments,
                r.status,
                tuple(tokens.get(mid, ())),
            )
            for mid, r in found.items()
        }

    def save_wrapped(
        self,
        *,
        workspace_id: int,
        campaign_id: int,
        new_contacts: Sequence[ContactInput],
        new_links: Mapping[int, str],
        messages: Sequence[PendingMessage],
        status: Status,
        provider: str,
        now_us: int,
    ) -> bool:
        """Store a wrap call's contacts, links, messages and tokens in one transaction and make
        the campaign wrap-only (see `services.wrapping.WrapStore.save_wrapped`)."""
        c, cp, lk, m = t.contacts, t.campaigns, t.links, t.messages
        try:
            with self.engine.begin() as conn:
                # First, so that a campaign clicktrail started sending meanwhile stops us (and
                # on PostgreSQL, a send that starts now waits for this transaction).
                marked = conn.execute(
                    cp.update()
                    .where(cp.c.id == campaign_id, cp.c.status.in_(WRAPPABLE))
                    .values(status="external")
                ).rowcount
                if not marked:
                    return False
                if new_contacts:
                    conn.execute(
                        c.insert(),
                        [
                            {"workspace_id": workspace_id, "phone": x.phone,
                             "external_id": x.external_id, "first_name": x.first_name,
                             "attributes": {}, "created_us": now_us, "updated_us": now_us,
                             "phone_valid_under": x.valid_under}
                            for x in new_contacts
                        ],
                    )  # fmt: skip
                contact_ids: dict[str, int] = {}
                for chunk in chunks([x.phone for x in new_contacts]):
                    contact_ids.update(
                        conn.execute(
                            sa.select(c.c.phone, c.c.id).where(
                                c.c.workspace_id == workspace_id, c.c.phone.in_(chunk)
                            )
                        ).all()
                    )
                if new_links:
                    conn.execute(
                        lk.insert(),
                        [
                            {"campaign_id": campaign_id, "idx": i, "url": url, "role": "cta",
                             "options": {}}
                            for i, url in sorted(new_links.items())
                        ],
                    )  # fmt: skip
                if not messages:
                    return True
                link_ids = dict(
                    conn.execute(
                        sa.select(lk.c.idx, lk.c.id).where(lk.c.campaign_id == campaign_id)
                    ).all()
                )
                sent = now_us if status == Status.SENT else None
                driver_insert(
                    conn,
                    m,
                    [
                        {
                            "public_id": x.public_id,
                            "campaign_id": campaign_id,
                            "contact_id": (
                                x.contact_id if x.contact_id is not None else contact_ids[x.phone]
                            ),
                            "to_phone": x.phone,
                            "body": x.body,
                            "encoding": x.encoding,
                            "segments": x.segments,
                            "status": status.value,
                            "provider": provider,
                            "queued_us": now_us,
                            "sent_us": sent,
                            "status_us": now_us,
                            "client_ref": x.client_ref,
                            "text_digest": x.text_digest,
                        }
                        for x in messages
                    ],
                )
                # COPY has no RETURNING: read the new ids back by public id.
                ids: dict[str, int] = {}
                for chunk in chunks([x.public_id for x in messages]):
                    ids.update(
                        conn.execute(
                            sa.select(m.c.public_id, m.c.id).where(m.c.public_id.in_(chunk))
                        ).all()
                    )
                token_rows = [
                    {
                        "token": tok,
                        "message_id": ids[x.public_id],
                        "link_id": link_ids[idx],
                        "campaign_id": campaign_id,
                        "contact_id": (
                            x.contact_id if x.contact_id is not None else contact_ids[x.phone]
                        ),
                        "destination": dest,
                    }
                    for x in messages
                    for tok, idx, dest in x.tokens
                ]
                if token_rows:
                    driver_insert(conn, t.tokens, token_rows)
        except (sa.exc.IntegrityError, self._driver_integrity_error) as exc:
            # The driver's own error too: COPY and the raw executemany bypass SQLAlchemy.
            raise Conflict("a token, contact, link or message key was taken; retry") from exc
        return True
