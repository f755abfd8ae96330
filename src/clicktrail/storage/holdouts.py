"""Campaign holdouts on SQL: the audience with its strata for a draw, the stored draw and its
held-out contacts, and which of them a wrapping batch must skip.

Implements `services.holdouts.HoldoutStore` on `holdout_draws` and `campaign_holdouts`. Each
public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.holdout import MISSING, STRATIFY_LIST, Draw, HoldoutSpec, Stratum
from clicktrail.domain.holdout import stratum_attribute as attribute_of
from clicktrail.domain.models import Campaign
from clicktrail.services.holdouts import AudienceMember, DrawRecord
from clicktrail.services.incrementality import ArmRows
from clicktrail.storage import tables as t
from clicktrail.storage.sql import bulk_insert, chunks, insert_ignore

_c, _lm, _cl = t.contacts, t.list_members, t.contact_lists
_dr, _ho = t.holdout_draws, t.campaign_holdouts
_ms, _cv = t.messages, t.conversions


def _in_sql(attribute: str) -> bool:
    return '"' not in attribute and "\\" not in attribute


def audience_query(list_id: int | None, attribute: str | None) -> sa.Select[Any]:
    """The campaign's audience (a list's members, else the workspace's contacts), by id, with
    the value of `attribute` as ``value`` when asked: one JSON value read in SQL instead of
    every contact's attributes parsed in Python (most of a draw's time: bench/RESULTS.md). A
    name SQLite's JSON paths cannot quote (``"``, ``\\``) reads ``attributes`` whole."""
    columns: list[Any] = [_c.c.id, _c.c.phone, _c.c.opted_out_us, _c.c.phone_valid_under]
    if attribute is not None and _in_sql(attribute):
        columns.append(_c.c.attributes[attribute].as_string().label("value"))
    elif attribute is not None:
        columns.append(_c.c.attributes)
    query = sa.select(*columns).where(_c.c.workspace_id == sa.bindparam("ws")).order_by(_c.c.id)
    if list_id is None:
        return query
    return query.join_from(_c, _lm, _lm.c.contact_id == _c.c.id).where(
        _lm.c.list_id == sa.bindparam("list")
    )


# Every list membership in the workspace, with the list's name (the `list` strata).
MEMBERSHIPS = (
    sa.select(_lm.c.contact_id, _cl.c.name)
    .select_from(_lm.join(_cl, _cl.c.id == _lm.c.list_id))
    .where(_cl.c.workspace_id == sa.bindparam("ws"))
)
DRAW = sa.select(_dr).where(_dr.c.campaign_id == sa.bindparam("campaign"))
HELD_BETWEEN = sa.select(_ho.c.contact_id).where(
    _ho.c.campaign_id == sa.bindparam("campaign"),
    _ho.c.contact_id > sa.bindparam("after"),
    _ho.c.contact_id <= sa.bindparam("through"),
)
HELD = sa.select(_ho.c.contact_id).where(_ho.c.campaign_id == sa.bindparam("campaign"))

# The lift's arms: the contacts a campaign's message reached (delivered; test sends apart) and
# its held-out contacts; then their conversions in the window, per contact and currency.
_DELIVERED = (
    _ms.c.campaign_id == sa.bindparam("campaign"),
    _ms.c.is_test.is_(False),
    _ms.c.delivered_us.is_not(None),
)
DELIVERED_CONTACTS = sa.select(_ms.c.contact_id).where(*_DELIVERED)
HELD_CONTACTS = sa.select(_ho.c.contact_id).where(_ho.c.campaign_id == sa.bindparam("campaign"))
TREATED_COUNT = sa.select(sa.func.count(sa.distinct(_ms.c.contact_id))).where(*_DELIVERED)
HELD_COUNT = sa.select(sa.func.count()).select_from(HELD_CONTACTS.subquery())


def arm_conversions(arm: sa.Select[Any], event: bool) -> sa.Select[Any]:
    """The conversions of `arm`'s contacts in the workspace within [start, end), summed per
    contact and currency (of event `event` only, when asked)."""
    q = (
        sa.select(_cv.c.contact_id, _cv.c.currency, sa.func.sum(_cv.c.value_micros))
        .where(
            _cv.c.workspace_id == sa.bindparam("ws"),
            _cv.c.contact_id.in_(arm),
            _cv.c.occurred_us >= sa.bindparam("start"),
            _cv.c.occurred_us < sa.bindparam("end"),
        )
        .group_by(_cv.c.contact_id, _cv.c.currency)
    )
    return q.where(_cv.c.event == sa.bindparam("event")) if event else q


TREATED_CONVERSIONS = arm_conversions(DELIVERED_CONTACTS, False)
TREATED_EVENT_CONVERSIONS = arm_conversions(DELIVERED_CONTACTS, True)
HELD_CONVERSIONS = arm_conversions(HELD_CONTACTS, False)
HELD_EVENT_CONVERSIONS = arm_conversions(HELD_CONTACTS, True)


def _record(r: Any) -> DrawRecord:
    strata = tuple(Stratum(name, int(e), int(h)) for name, (e, h) in sorted(r.strata.items()))
    spec = HoldoutSpec(float(r.share), int(r.seed), r.stratify)
    return DrawRecord(spec, int(r.eligible), int(r.held), strata, int(r.drawn_us))


class HoldoutQueries:
    """Holdouts on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def holdout_draw(self, campaign_id: int) -> DrawRecord | None:
        """Return the campaign's draw, None before its send started (or without a holdout)."""
        with self.engine.connect() as conn:
            r = conn.execute(DRAW, {"campaign": campaign_id}).first()
        return None if r is None else _record(r)

    def audience_strata(
        self, workspace_id: int, list_id: int | None, stratify: str | None
    ) -> Iterator[AudienceMember]:
        """Return the audience's contacts with their stratum (``list``: the sorted names of
        the lists a contact is on, joined by ``|``; ``attribute:NAME``: the attribute's value;
        ``""`` when missing or unstratified), opted-out ones included."""
        attribute = None if stratify in (None, STRATIFY_LIST) else attribute_of(stratify)
        with self.engine.connect() as conn:
            lists: dict[int, list[str]] = {}
            if stratify == STRATIFY_LIST:
                for cid, name in conn.execute(MEMBERSHIPS, {"ws": workspace_id}):
                    lists.setdefault(cid, []).append(name)
            query = audience_query(list_id, attribute)
            in_sql = attribute is not None and _in_sql(attribute)
            rows = conn.execute(query, {"ws": workspace_id, "list": list_id}).all()
        for r in rows:
            if stratify is None:
                stratum = MISSING
            elif attribute is None:
                stratum = "|".join(sorted(lists.get(r.id, ())))
            else:
                value = r.value if in_sql else (r.attributes or {}).get(attribute)
                stratum = MISSING if value is None else str(value)
            yield AudienceMember(
                r.id, r.phone, r.opted_out_us is not None, stratum, r.phone_valid_under
            )

    def save_draw(self, campaign_id: int, found: Draw, now_us: int) -> bool:
        """Store the draw and its held-out contacts in one transaction; False (nothing
        written) when the campaign has a draw already."""
        spec = found.spec
        assert spec is not None
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert_ignore(conn, _dr).returning(_dr.c.campaign_id),
                {
                    "campaign_id": campaign_id,
                    "seed": spec.seed,
                    "share": spec.share,
                    "stratify": spec.stratify,
                    "eligible": found.eligible,
                    "held": len(found.held),
                    "strata": {s.name: [s.eligible, s.held] for s in found.strata},
                    "drawn_us": now_us,
                },
            ).scalar()
            if inserted is None:
                return False
            rows = [
                {"campaign_id": campaign_id, "contact_id": cid, "stratum": stratum}
                for cid, stratum in sorted(found.held.items())
            ]
            for part in chunks(rows, 10_000):
                bulk_insert(conn, _ho, list(part))
        return True

    def held_between(self, campaign_id: int, after_id: int, through_id: int) -> set[int]:
        """Return the campaign's held-out contacts with ids in (`after_id`, `through_id`]."""
        with self.engine.connect() as conn:
            found = conn.execute(
                HELD_BETWEEN, {"campaign": campaign_id, "after": after_id, "through": through_id}
            ).scalars()
            return {int(x) for x in found}

    def held_out(self, campaign_id: int) -> set[int]:
        """Return every held-out contact of the campaign."""
        with self.engine.connect() as conn:
            return {int(x) for x in conn.execute(HELD, {"campaign": campaign_id}).scalars()}

    def lift_arms(
        self, campaign: Campaign, *, start_us: int, end_us: int, event: str | None
    ) -> tuple[ArmRows, ArmRows]:
        """Return the treated arm (contacts with a delivered message of the campaign) and the
        holdout arm, with their conversions in the workspace in [`start_us`, `end_us`)."""
        params = {
            "campaign": campaign.id, "ws": campaign.workspace_id, "start": start_us,
            "end": end_us, "event": event,
        }  # fmt: skip
        treated_q = TREATED_EVENT_CONVERSIONS if event else TREATED_CONVERSIONS
        held_q = HELD_EVENT_CONVERSIONS if event else HELD_CONVERSIONS
        with self.engine.connect() as conn:
            arms = []
            for count, query in ((TREATED_COUNT, treated_q), (HELD_COUNT, held_q)):
                n = int(conn.execute(count, params).scalar_one())
                rows = tuple(
                    (int(cid), currency, None if total is None else int(total))
                    for cid, currency, total in conn.execute(query, params)
                )
                arms.append(ArmRows(n, rows))
        return arms[0], arms[1]
