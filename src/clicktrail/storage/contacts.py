"""Contacts and contact lists on SQL: importing (insert new, merge known), finding one, an
audience in pages, and what previews need (attribute names, the longest values).

Implements `services.contacts.ContactStore` on `contacts`, `contact_lists` and `list_members`;
`contact_from_row` is the one mapping of a contact row (wrap-only uses it too). Each public
method is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.models import Contact, ContactInput
from clicktrail.domain.sms import analyze
from clicktrail.storage import tables as t
from clicktrail.storage.rollup import country_of
from clicktrail.storage.sql import chunks, insert_ignore

_c, _lst, _lm = t.contacts, t.contact_lists, t.list_members

# The workspace's contacts among some phones (an import's chunk), as merging needs them.
KNOWN_BY_PHONE = sa.select(
    _c.c.id, _c.c.phone, _c.c.external_id, _c.c.first_name, _c.c.attributes
).where(_c.c.workspace_id == sa.bindparam("ws"), _c.c.phone.in_(sa.bindparam("phones", expanding=True)))  # fmt: skip
IDS_BY_PHONE = sa.select(_c.c.id).where(
    _c.c.workspace_id == sa.bindparam("ws"), _c.c.phone.in_(sa.bindparam("phones", expanding=True))
)
MERGE_CONTACT = (
    _c.update()
    .where(_c.c.id == sa.bindparam("b_id"))
    .values(
        external_id=sa.bindparam("external_id"),
        first_name=sa.bindparam("first_name"),
        attributes=sa.bindparam("attributes"),
        updated_us=sa.bindparam("updated_us"),
        # Checked again by this import: its rules; otherwise what the row had.
        phone_valid_under=sa.func.coalesce(
            sa.bindparam("valid_under", type_=sa.String), _c.c.phone_valid_under
        ),
    )
)
LIST_BY_NAME = sa.select(_lst.c.id).where(
    _lst.c.workspace_id == sa.bindparam("ws"), _lst.c.name == sa.bindparam("name")
)
CONTACT_COUNT = sa.select(sa.func.count()).where(_c.c.workspace_id == sa.bindparam("ws"))
# Attribute sets repeat from one import to the next: look at distinct JSON texts.
ATTRIBUTE_SETS = (
    sa.select(sa.cast(_c.c.attributes, sa.Text))
    .where(_c.c.workspace_id == sa.bindparam("ws"))
    .distinct()
)
# A contact by phone (E.164) or external id.
CONTACT_BY_REF = (
    sa.select(_c)
    .where(
        _c.c.workspace_id == sa.bindparam("ws"),
        sa.or_(_c.c.phone == sa.bindparam("ref"), _c.c.external_id == sa.bindparam("ref")),
    )
    .limit(1)
)


def contact_from_row(r: Any) -> Contact:
    """Return the contact of a `contacts` row."""
    return Contact(
        r.id, r.workspace_id, r.phone, r.external_id, r.first_name, dict(r.attributes or {}),
        r.opted_out_us is not None, r.phone_valid_under,
    )  # fmt: skip


class ContactQueries:
    """Contacts and their lists on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def upsert_contacts(
        self,
        workspace_id: int,
        contacts: Sequence[ContactInput],
        list_name: str | None,
        now_us: int,
    ) -> tuple[int, int]:
        """Insert new contacts and merge known ones (same phone), all in one transaction.

        Known contacts keep values the import leaves empty; attributes are merged. Returns
        (created, updated). With `list_name`, every imported contact joins that list.
        """
        created = updated = 0
        with self.engine.begin() as conn:
            list_id = _ensure_list(conn, workspace_id, list_name, now_us) if list_name else None
            for chunk in chunks(contacts):
                phones = [x.phone for x in chunk]
                where = {"ws": workspace_id, "phones": phones}
                existing = {r.phone: r for r in conn.execute(KNOWN_BY_PHONE, where)}
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                for x in chunk:
                    old = existing.get(x.phone)
                    if old is None:
                        inserts.append(
                            {
                                "workspace_id": workspace_id,
                                "phone": x.phone,
                                "external_id": x.external_id,
                                "first_name": x.first_name,
                                "attributes": x.attributes,
                                "created_us": now_us,
                                "updated_us": now_us,
                                "phone_valid_under": x.valid_under,
                                "country": country_of(x.phone),
                            }
                        )
                    else:
                        merged = ContactInput(
                            old.phone, old.external_id, old.first_name, dict(old.attributes or {})
                        ).merged_with(x)
                        updates.append(
                            {
                                "b_id": old.id,
                                "external_id": merged.external_id,
                                "first_name": merged.first_name,
                                "attributes": merged.attributes,
                                "updated_us": now_us,
                                "valid_under": x.valid_under,
                            }
                        )
                if inserts:
                    conn.execute(_c.insert(), inserts)
                    created += len(inserts)
                if updates:
                    conn.execute(MERGE_CONTACT, updates)
                    updated += len(updates)
                if list_id is not None:
                    ids = conn.execute(IDS_BY_PHONE, where).scalars()
                    conn.execute(
                        insert_ignore(conn, _lm),
                        [{"list_id": list_id, "contact_id": i} for i in ids],
                    )
        return created, updated

    def find_list(self, workspace_id: int, name: str) -> int | None:
        """Return the id of the workspace's contact list called `name`."""
        with self.engine.connect() as conn:
            found = conn.execute(LIST_BY_NAME, {"ws": workspace_id, "name": name}).scalar()
        return None if found is None else int(found)

    def count_contacts(self, workspace_id: int) -> int:
        """Return how many contacts the workspace has."""
        with self.engine.connect() as conn:
            return int(conn.execute(CONTACT_COUNT, {"ws": workspace_id}).scalar_one())

    def attribute_names(self, workspace_id: int) -> set[str]:
        """Return every attribute name any of the workspace's contacts has."""
        names: set[str] = set()
        with self.engine.connect() as conn:
            for (attrs,) in conn.execute(ATTRIBUTE_SETS, {"ws": workspace_id}):
                names.update(json.loads(attrs))
        return names

    def audience(
        self, workspace_id: int, list_id: int | None, after_id: int, limit: int
    ) -> list[Contact]:
        """Return up to `limit` opted-in contacts of the audience with id > `after_id`, by id."""
        q = sa.select(_c).where(
            _c.c.workspace_id == workspace_id, _c.c.opted_out_us.is_(None), _c.c.id > after_id
        )
        if list_id is not None:
            q = q.join(_lm, _lm.c.contact_id == _c.c.id).where(_lm.c.list_id == list_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(_c.c.id).limit(limit)).all()
        return [contact_from_row(r) for r in rows]

    def longest_values(self, workspace_id: int, list_id: int | None) -> list[dict[str, str]]:
        """Return candidate worst-case field values of the audience, as value sets.

        The first set has each field's longest value in GSM-7 septets; the second, each
        field's longest value that forces UCS-2 (in UTF-16 units), where there is one. A
        message is at its costliest with one of them. Scans the audience in pages (this serves
        previews, not sends). Empty when the audience is.
        """
        longest: dict[str, tuple[int, str]] = {}
        ucs2: dict[str, tuple[int, str]] = {}
        after = 0
        while True:
            page = self.audience(workspace_id, list_id, after, 5000)
            if not page:
                break
            after = page[-1].id
            for contact in page:
                for name, value in contact.field_values().items():
                    info = analyze(value)
                    best = ucs2 if info.encoding != "GSM-7" else longest
                    if name not in best or info.units > best[name][0]:
                        best[name] = (info.units, value)
        if not longest and not ucs2:
            return []
        first = {k: v for k, (_, v) in longest.items()}
        for k, (_, v) in ucs2.items():
            first.setdefault(k, v)
        second = {**first, **{k: v for k, (_, v) in ucs2.items()}}
        return [first, second] if ucs2 else [first]

    def find_contact(self, workspace_id: int, phone_or_external_id: str) -> Contact | None:
        """Return the contact with this phone (E.164) or external id."""
        with self.engine.connect() as conn:
            r = conn.execute(CONTACT_BY_REF, {"ws": workspace_id, "ref": phone_or_external_id})
            found = r.first()
        return contact_from_row(found) if found else None


def _ensure_list(conn: sa.Connection, workspace_id: int, name: str, now_us: int) -> int:
    found = conn.execute(LIST_BY_NAME, {"ws": workspace_id, "name": name}).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            _lst.insert().returning(_lst.c.id),
            {"workspace_id": workspace_id, "name": name, "created_us": now_us},
        ).scalar_one()
    )
